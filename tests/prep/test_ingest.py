import json
import math

import pandas as pd
import pytest

from product_descgen.prep.config import AttributeFormat, ColumnMapping, Limits
from product_descgen.prep.ingest import ingest, parse_attributes
from product_descgen.prep.quarantine import RowRejected

FMT = AttributeFormat()
COLUMNS = ColumnMapping()
LIMITS = Limits(max_description_chars=100)


def good(pid: str, **overrides) -> dict:
    row = {
        "product_id": pid,
        "title": f"Product {pid}",
        "category": "Kitchen",
        "attributes": {"Color": "Red"},
        "description": "A thing.",
    }
    return {**row, **overrides}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Color": "Red", "Size": " M "}, {"Color": "Red", "Size": "M"}),
        ([{"key": "Color", "value": "Red"}], {"Color": "Red"}),
        ('{"Color": "Red"}', {"Color": "Red"}),
        ('[{"key": "Color", "value": "Red"}]', {"Color": "Red"}),
        ([{"key": None, "value": "Wash cold"}], {"Other details": "Wash cold"}),
        ([{"key": None, "value": "a"}, {"key": "", "value": "b"}], {"Other details": "a; b"}),
        ({"Color": "", "Size": None}, {}),
        ([("Color", "Red"), ("Size", "M")], {"Color": "Red", "Size": "M"}),  # a Parquet map
        (None, {}),
        (math.nan, {}),
        ("", {}),
    ],
)
def test_parse_attributes_accepts_supported_shapes(value, expected):
    assert parse_attributes(value, FMT) == expected


@pytest.mark.parametrize("value", ["colour=red; size=M", 42, [["Color", "Red"]], '"just text"'])
def test_parse_attributes_rejects_unparseable(value):
    with pytest.raises(RowRejected) as err:
        parse_attributes(value, FMT)
    assert err.value.reason == "unparseable_attributes"


def test_custom_key_value_fields():
    fmt = AttributeFormat(key_field="name", value_field="val")
    assert parse_attributes([{"name": "Fit", "val": "Slim"}], fmt) == {"Fit": "Slim"}


def test_ingest_keeps_good_rows_and_quarantines_each_bad_row_with_reason():
    raw = pd.DataFrame(
        [
            good("1"),
            good("2", title="   "),
            good("3", attributes={}),
            good("1", title="Other"),  # duplicate id
            good("4", attributes="colour=red"),
            good("5", description="x" * 101),
            good("6", category=None),
            good(None),
            {"_load_error": "line 9: Expecting value (col 1)", "_line": 9, "_raw_line": "{oops"},
        ]
    )
    kept, quarantined = ingest(raw, COLUMNS, FMT, LIMITS)
    assert [p["product_id"] for p in kept] == ["1", "6"]
    assert kept[1]["category"] == "Uncategorised"
    reasons = {(q["product_id"], q["reason"]) for q in quarantined}
    assert reasons == {
        ("2", "missing_title"),
        ("3", "no_usable_attributes"),
        ("1", "duplicate_product_id"),
        ("4", "unparseable_attributes"),
        ("5", "text_too_long"),
        (None, "missing_product_id"),
        (None, "malformed_json"),
    }
    assert len(kept) + len(quarantined) == len(raw)
    assert all(q["detail"] for q in quarantined)
    too_long = next(q for q in quarantined if q["reason"] == "text_too_long")
    assert "(data_prep.limits.max_description_chars)" in too_long["detail"]  # what to raise
    malformed = next(q for q in quarantined if q["reason"] == "malformed_json")
    assert malformed["source_row"] == 9
    assert json.loads(malformed["record"]) == {  # the line as it was, not empty placeholders
        "_load_error": "line 9: Expecting value (col 1)",
        "_raw_line": "{oops",
        "source_row": 9,
    }


def test_a_description_is_measured_as_shown_not_with_its_markup_or_inlined_images():
    """A pasted image (a data: URI) or a style block made a one-sentence body "too long"."""
    image = f'<img src="data:image/jpeg;base64,{"A" * 500}">'
    body = f"<style>p {{color: red}}</style><p>A red mug.</p>{image}"
    kept, _ = ingest(pd.DataFrame([good("1", description=body)]), COLUMNS, FMT, LIMITS)
    assert kept[0]["description"] == body  # cleaned later, as every description is
    long = f"<p>{'x' * 101}</p>{image}"
    _, [quarantined] = ingest(pd.DataFrame([good("2", description=long)]), COLUMNS, FMT, LIMITS)
    assert quarantined["detail"].startswith(
        f"description has 101 chars ({len(long)} with its markup) > 100"
    )


SHOP_COLUMNS = ColumnMapping(
    product_id="Handle", title="Title", category="Type", description="Body (HTML)",
    attributes=None, attribute_columns={"Brand": "Vendor", "Material": "Fabric", "Size": "Sizes"},
)  # fmt: skip


def shop_row(handle: str, **overrides) -> dict:
    row = {"Handle": handle, "Title": f"Hoodie {handle}", "Type": "Clothing", "Vendor": "Acme",
           "Fabric": "Cotton", "Sizes": "S, M", "Body (HTML)": "<p>Warm.</p>"}  # fmt: skip
    return {**row, **overrides}


def test_attributes_come_from_columns_of_their_own():
    """A shop export keeps attributes in columns (Vendor, Fabric, options): it could not be
    read through the mapping (attributes: null was refused, one column was all it read)."""
    raw = pd.DataFrame(
        [
            shop_row("a"),
            shop_row("b", Vendor=None, Sizes=""),
            shop_row("a", Title=None, Vendor=None, Fabric=None, Sizes="L"),  # a variant row
            shop_row("c", Vendor=None, Fabric=math.nan, Sizes=None),
        ]
    ).astype({"Vendor": "string"})  # a nullable column: its empty cells are pandas' NA
    kept, quarantined = ingest(raw, SHOP_COLUMNS, FMT, LIMITS)
    assert [p["attributes"] for p in kept] == [
        {"Brand": "Acme", "Material": "Cotton", "Size": "S, M"}, {"Material": "Cotton"},
    ]  # fmt: skip
    assert [(q["reason"], q["detail"][:31]) for q in quarantined] == [
        ("duplicate_product_id", "id already used by source row 1"),
        ("no_usable_attributes", "0 attribute(s) with a value, ne"),
    ]
    both = SHOP_COLUMNS.model_copy(update={"attributes": "attributes"})
    with_column = pd.DataFrame([shop_row("a", attributes='{"Brand": "Acme Co", "Fit": "Slim"}')])
    [product], _ = ingest(with_column, both, FMT, LIMITS)
    assert product["attributes"] == {
        "Brand": "Acme Co; Acme",
        "Fit": "Slim",
        "Material": "Cotton",
        "Size": "S, M",
    }
    with pytest.raises(ValueError, match=r"attribute 'Size' \(mapped to column 'Sizes'\)"):
        ingest(raw.drop(columns="Sizes"), SHOP_COLUMNS, FMT, LIMITS)
    with pytest.raises(ValueError, match=r"attributes: null leaves products without attributes"):
        ColumnMapping(attributes=None)
    # a batch of new products may lack some attribute columns, not all of them
    new = raw.drop(columns="Sizes").assign(Tags=[[], ["warm"], [None], [pd.NaT]])
    tagged = SHOP_COLUMNS.model_copy(update={"attribute_columns": {"Tag": "Tags", "Size": "Sizes"}})
    kept, _ = ingest(new, tagged, FMT, LIMITS, source="new_products")
    assert [p["attributes"] for p in kept] == [{"Tag": '["warm"]'}]  # an empty list is no value
    with pytest.raises(ValueError, match=r"attribute 'Tag' \(mapped to column 'Tags'\)"):
        ingest(new.drop(columns="Tags"), tagged, FMT, LIMITS, source="new_products")


def test_ingest_maps_columns_and_types():
    raw = pd.DataFrame(
        [
            {
                "sku": 17,
                "name": "Kettle",
                "cat": "Kitchen",
                "specs": [{"k": "Capacity", "v": "1.7 L"}],
                "text": None,
            }
        ]
    )
    columns = ColumnMapping(
        product_id="sku", title="name", category="cat", attributes="specs", description="text"
    )
    kept, quarantined = ingest(
        raw, columns, AttributeFormat(key_field="k", value_field="v"), LIMITS
    )
    assert quarantined == []
    assert kept == [
        {
            "product_id": "17",
            "title": "Kettle",
            "category": "Kitchen",
            "attributes": {"Capacity": "1.7 L"},
            "description": "",
            "source_row": 1,
        }
    ]


def test_ingest_without_description_column_when_mapped_to_null():
    raw = pd.DataFrame(
        [{"product_id": "1", "title": "T", "category": "C", "attributes": {"a": "b"}}]
    )
    kept, _ = ingest(raw, ColumnMapping(description=None), FMT, LIMITS)
    assert kept[0]["description"] == ""


def test_empty_catalogue_is_a_clear_error():
    with pytest.raises(ValueError, match="no rows"):
        ingest(pd.DataFrame(), COLUMNS, FMT, LIMITS)


def test_missing_column_error_names_the_column_and_the_setting():
    raw = pd.DataFrame([{"product_id": "1", "name": "T", "attributes": {}}])
    with pytest.raises(ValueError) as err:
        ingest(raw, COLUMNS, FMT, LIMITS)
    message = str(err.value)
    assert "title (mapped to column 'title')" in message
    assert "category" in message and "description" in message
    assert "data_prep.columns" in message and "'name'" in message
    assert message.startswith("raw_products:")


def test_new_products_without_any_description_or_category_are_described():
    raw = pd.DataFrame([{"product_id": "1", "title": "Lunch box", "attributes": {"Tiers": "3"}}])
    [kept], quarantined = ingest(raw, COLUMNS, FMT, LIMITS, source="new_products")
    assert not quarantined and kept["description"] == "" and kept["category"] == "Uncategorised"
    with pytest.raises(ValueError, match="lacks required column"):  # a training catalogue
        ingest(raw, COLUMNS, FMT, LIMITS)


def test_new_products_in_another_format_are_named_with_the_way_out():
    raw = pd.DataFrame([{"sku": "1", "name": "T", "specs": {}}])
    with pytest.raises(ValueError) as err:
        ingest(raw, COLUMNS, FMT, LIMITS, source="new_products")
    message = str(err.value)
    assert message.startswith("new_products:") and "the training catalogue's mapping" in message
    assert "new_products dataset" in message
    # the file's own columns, not the optional ones filled in for a batch that lacks them
    assert "Columns present: ['name', 'sku', 'specs']." in message


def write_csv(path, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


CSV_ROWS = [
    {"product_id": "000123", "title": "Mug", "attributes": '{"Colour": "Red"}'},
    {"product_id": "", "title": "No id", "attributes": '{"Colour": "Blue"}'},
    {"product_id": "000124", "title": "1984", "attributes": '{"Colour": "Green"}'},
]


def test_csv_read_as_text_keeps_ids_as_written(tmp_path):
    """The CSV entry docs/own_catalogue_and_models.md shows (load_args: {dtype: str})."""
    from kedro_datasets.pandas import CSVDataset

    write_csv(tmp_path / "catalogue.csv", CSV_ROWS)
    raw = CSVDataset(filepath=str(tmp_path / "catalogue.csv"), load_args={"dtype": str}).load()
    kept, quarantined = ingest(raw, ColumnMapping(category=None, description=None), FMT, LIMITS)
    assert [p["product_id"] for p in kept] == ["000123", "000124"]
    assert [q["reason"] for q in quarantined] == ["missing_product_id"]


def test_ids_read_as_numbers_are_written_whole_and_warned_about(tmp_path, caplog):
    """A numeric id column with an empty cell loads as floats: ids are 123, not 123.0, and a
    warning says the leading zeros are gone and how to read the column as text."""
    from kedro_datasets.pandas import CSVDataset

    write_csv(tmp_path / "catalogue.csv", CSV_ROWS)
    raw = CSVDataset(filepath=str(tmp_path / "catalogue.csv")).load()
    assert raw["product_id"].dtype == "float64"
    with caplog.at_level("WARNING", logger="product_descgen.prep.ingest"):
        kept, quarantined = ingest(raw, ColumnMapping(category=None, description=None), FMT, LIMITS)
    assert [p["product_id"] for p in kept] == ["123", "124"]
    assert kept[1]["title"] == "1984"
    assert [q["reason"] for q in quarantined] == ["missing_product_id"]
    assert "'product_id'" in caplog.text and "dtype: str" in caplog.text


def test_text_ids_raise_no_warning(caplog):
    with caplog.at_level("WARNING", logger="product_descgen.prep.ingest"):
        ingest(pd.DataFrame([good("000123")]), COLUMNS, FMT, LIMITS)
    assert caplog.text == ""


def test_a_list_object_or_boolean_where_text_belongs_is_quarantined_not_stringified():
    raw = pd.DataFrame(
        [
            good("1"),
            good(True),
            good({"sku": "A1"}),
            good("4", title=["Notebook", "A5"]),
            good("5", description={"en": "Nice shoe"}),
            good("6", category=["Shoes"]),
            good(7, title=1984),  # numbers are text a catalogue may hold
        ]
    )
    kept, quarantined = ingest(raw, COLUMNS, FMT, LIMITS)
    assert [(p["product_id"], p["title"]) for p in kept] == [("1", "Product 1"), ("7", "1984")]
    assert [q["reason"] for q in quarantined] == ["wrong_type"] * 5
    assert "column 'title' (title) holds list \"['Notebook', 'A5']\", not text" in [
        q["detail"] for q in quarantined
    ]


def test_a_parquet_map_column_of_attributes_is_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from kedro_datasets.pandas import ParquetDataset

    table = pa.table(
        {
            "product_id": ["1"],
            "title": ["Mug"],
            "attributes": pa.array(
                [[("Color", "Red"), ("Size", "M")]], pa.map_(pa.string(), pa.string())
            ),
        }
    )
    pq.write_table(table, tmp_path / "c.parquet")
    raw = ParquetDataset(filepath=str(tmp_path / "c.parquet")).load()
    kept, quarantined = ingest(raw, ColumnMapping(category=None, description=None), FMT, LIMITS)
    assert not quarantined and kept[0]["attributes"] == {"Color": "Red", "Size": "M"}
