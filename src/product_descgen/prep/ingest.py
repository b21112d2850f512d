"""Map a raw catalogue onto the canonical schema and validate every row.

Canonical schema: ``product_id, title, category, attributes (key -> value), description``.
Each raw row ends either in the returned products or in the quarantine, with a reason.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from product_descgen.prep.clean import collapse_whitespace, strip_markup
from product_descgen.prep.config import AttributeFormat, ColumnMapping, Limits
from product_descgen.prep.quarantine import RowRejected, quarantine_row

logger = logging.getLogger(__name__)

LOAD_ERROR_COLUMN = "_load_error"  # set by JSONLinesDataset for lines that are not JSON objects
SOURCE_ROW_COLUMN = "_line"  # 1-based line number, when the dataset knows it
RAW_LINE_COLUMN = "_raw_line"  # a malformed line's text (JSONLinesDataset)
REQUIRED_FIELDS = ("product_id", "title", "attributes")


class Product(BaseModel):
    """One usable catalogue row in canonical form."""

    model_config = ConfigDict(extra="forbid")

    product_id: str
    title: str
    category: str
    attributes: dict[str, str]
    description: str

    @field_validator("product_id", "title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("is empty")
        return value


def check_columns(
    raw: pd.DataFrame,
    columns: ColumnMapping,
    source: str = "raw_products",
    given: list[str] | None = None,
) -> None:
    """Fail with a clear message when the catalogue is empty or a mapped column is missing;
    ``source``: the catalog dataset read (raw_products, or describe's new_products);
    ``given``: the columns the file has, named in the message (default: ``raw``'s)."""
    loader = [LOAD_ERROR_COLUMN, SOURCE_ROW_COLUMN, RAW_LINE_COLUMN]
    usable = raw.drop(columns=loader, errors="ignore")
    if raw.empty:
        raise ValueError(f"{source}: the catalogue has no rows: is the file empty?")
    if usable.dropna(how="all").empty and LOAD_ERROR_COLUMN not in raw:
        raise ValueError(f"{source}: the catalogue has no rows with any value")
    present = set(usable.columns)
    missing = [
        f"{field} (mapped to column {column!r})"
        for field, column in columns.mapped().items()
        if column not in present
    ]
    if missing and len(present) > 0:
        fix = (
            "new products are read with the training catalogue's mapping (data_prep.columns): "
            "give them in that format, pointing the environment's new_products dataset at "
            "such a file (docs/own_catalogue_and_models.md)"
            if source == "new_products"
            else "fix the column mapping in parameters_data_prep.yml (data_prep.columns)"
        )
        raise ValueError(
            f"{source}: the catalogue lacks required column(s): {', '.join(missing)}. "
            f"Columns present: {sorted(present & set(given or present))}. To read it, {fix}."
        )
    id_column = columns.product_id
    if id_column in present and pd.api.types.is_numeric_dtype(raw[id_column]):
        logger.warning(
            "column %r (product_id) was read as numbers (%s): if the file writes ids with "
            "leading zeros (000123), they are lost. Read it as text: load_args: {dtype: str} "
            "on a CSV dataset (docs/own_catalogue_and_models.md); ids stored as numbers "
            "(Parquet integers) are fine",
            id_column,
            raw[id_column].dtype,
        )


def _is_missing(value: Any) -> bool:
    """None, NaN, or pandas' NA or NaT (a nullable, Arrow-backed or datetime column's empty
    cell)."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def cell_text(value: Any) -> str:
    """A cell as the text the catalogue holds. A whole number in a float column (pandas reads
    a numeric CSV column with an empty cell as floats) is written without its ``.0``: id 123,
    not 123.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_attributes(value: Any, fmt: AttributeFormat) -> dict[str, str]:
    """Attributes as an ordered ``{key: value}`` dict of non-empty strings.

    Accepts a mapping (a Parquet map: a list of ``(key, value)`` pairs), a list of
    ``{key_field, value_field}`` objects, or a JSON string of either (CSV catalogues). Null or
    empty keys are gathered under ``fmt.unnamed_key``.
    """
    if _is_missing(value):
        return {}
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise RowRejected(
                "unparseable_attributes", f"not JSON ({err.msg} at char {err.pos}): {text[:80]!r}"
            ) from None
    if hasattr(value, "tolist") and not isinstance(value, dict):  # numpy array from Parquet
        value = value.tolist()
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [_pair(item, fmt) for item in value]
    else:
        raise RowRejected(
            "unparseable_attributes", f"expected an object or a list, got {type(value).__name__}"
        )
    out: dict[str, str] = {}
    for raw_key, raw_val in pairs:
        key = fmt.unnamed_key if _is_missing(raw_key) or not str(raw_key).strip() else str(raw_key)
        add_attribute(out, key, raw_val)
    return out


def add_attribute(attributes: dict[str, str], key: str, value: Any) -> None:
    """``value`` under ``key`` (after a different value already there: "a; b"); an empty one
    is no attribute."""
    if hasattr(value, "tolist"):  # a numpy array (or scalar) from Parquet
        value = value.tolist()
    empty = isinstance(value, (list, dict)) and not any(
        not _is_missing(v) for v in (value.values() if isinstance(value, dict) else value)
    )  # [], {}, [None]
    if _is_missing(value) or empty or not str(value).strip():
        return
    # a nested value reaches the model as JSON, not as a Python repr
    nested = isinstance(value, (dict, list))
    text = (json.dumps(value, ensure_ascii=False) if nested else cell_text(value)).strip()
    if key in attributes and attributes[key] != text:
        attributes[key] = f"{attributes[key]}; {text}"
    else:
        attributes[key] = text


def _pair(item: Any, fmt: AttributeFormat) -> tuple[Any, Any]:
    """One attribute of a list: a ``{key_field, value_field}`` object, or a Parquet map's
    ``(key, value)`` entry."""
    if isinstance(item, tuple) and len(item) == 2:  # noqa: PLR2004 - a pair
        return item
    if not isinstance(item, dict) or fmt.value_field not in item:
        raise RowRejected(
            "unparseable_attributes",
            f"list item is not an object with a {fmt.value_field!r} field: {item!r:.80}",
        )
    return item.get(fmt.key_field), item[fmt.value_field]


def _field(record: dict[str, Any], column: str | None) -> Any:
    return None if column is None else record.get(column)


def to_product(
    record: dict[str, Any], columns: ColumnMapping, fmt: AttributeFormat, limits: Limits
) -> dict[str, Any]:
    """One raw record in canonical form, or :class:`RowRejected` with the reason."""
    if not _is_missing(record.get(LOAD_ERROR_COLUMN)):
        raise RowRejected("malformed_json", str(record[LOAD_ERROR_COLUMN]))
    for name in ("product_id", "title", "category", "description"):
        column = getattr(columns, name)
        value = _field(record, column)
        # a list, an object or true/false where text belongs would reach ids and prompts as
        # a Python repr ("['Notebook', 'A5']")
        if not _is_missing(value) and (
            isinstance(value, bool) or not isinstance(value, (str, numbers.Real))
        ):
            raise RowRejected(
                "wrong_type",
                f"column {column!r} ({name}) holds {type(value).__name__} "
                f"{str(value)[:60]!r}, not text",
            )
    product_id = _field(record, columns.product_id)
    title = _field(record, columns.title)
    if _is_missing(product_id) or not cell_text(product_id).strip():
        raise RowRejected("missing_product_id", f"column {columns.product_id!r} is empty")
    if _is_missing(title) or not cell_text(title).strip():
        raise RowRejected("missing_title", f"column {columns.title!r} is empty")
    attributes = parse_attributes(_field(record, columns.attributes), fmt)
    for name, column in columns.attribute_columns.items():
        add_attribute(attributes, name, record.get(column))
    if len(attributes) < limits.min_attributes:
        raise RowRejected(
            "no_usable_attributes",
            f"{len(attributes)} attribute(s) with a value, need {limits.min_attributes} "
            "(data_prep.limits.min_attributes)",
        )
    description = _field(record, columns.description)
    description = "" if _is_missing(description) else cell_text(description)
    shown = len(description)
    if shown > limits.max_description_chars:  # counted as shown: markup, inlined images aside
        shown = len(collapse_whitespace(strip_markup(description)))
    if shown > limits.max_description_chars:
        markup = f" ({len(description)} with its markup)" if shown < len(description) else ""
        raise RowRejected(
            "text_too_long",
            f"description has {shown} chars{markup} > {limits.max_description_chars} "
            "(data_prep.limits.max_description_chars)",
        )
    title = cell_text(title)
    if len(title) > limits.max_title_chars:
        raise RowRejected(
            "text_too_long",
            f"title has {len(title)} chars > {limits.max_title_chars} "
            "(data_prep.limits.max_title_chars)",
        )
    category = _field(record, columns.category)
    if _is_missing(category) or not cell_text(category).strip():
        category = limits.default_category
    try:
        product = Product(
            product_id=cell_text(product_id),
            title=title,
            category=cell_text(category).strip(),
            attributes=attributes,
            description=description,
        )
    except ValidationError as err:  # defensive: the checks above should have caught it
        raise RowRejected("invalid_row", str(err).replace("\n", " ")) from None
    return product.model_dump()


def ingest(
    raw: pd.DataFrame,
    columns: ColumnMapping,
    fmt: AttributeFormat,
    limits: Limits,
    source: str = "raw_products",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split raw rows into canonical products and quarantine rows (reason per row);
    ``source``: the catalog dataset they come from, for messages. A batch of new products
    none of whose rows has an optional field (category, description) lacks it, as each row
    may: not the wrong format that a missing column of the training catalogue means."""
    absent = []
    if source == "new_products" and not raw.empty:
        absent = [
            column for field, column in columns.mapped().items()
            if field not in REQUIRED_FIELDS and column not in raw
        ]  # fmt: skip
        named = set(columns.attribute_columns.values())
        if columns.attributes is None and named <= set(absent):  # no attribute column at all
            absent = [column for column in absent if column not in named]
    given = list(raw.columns)
    if absent:
        logger.info("%s: no row has %s: empty for every row", source, ", ".join(absent))
        raw = raw.assign(**dict.fromkeys(absent))
    check_columns(raw, columns, source, given=given)
    kept: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for position, raw_record in enumerate(raw.to_dict(orient="records")):
        source_row = raw_record.get(SOURCE_ROW_COLUMN)
        source_row = position + 1 if _is_missing(source_row) else int(source_row)
        record = {k: v for k, v in raw_record.items() if k != SOURCE_ROW_COLUMN}
        record["source_row"] = source_row
        product_id = _field(record, columns.product_id)
        try:
            product = to_product(record, columns, fmt, limits)
        except RowRejected as rejected:
            pid = None if _is_missing(product_id) else cell_text(product_id)
            if rejected.reason == "malformed_json":  # the other columns are only placeholders
                record = {k: v for k, v in record.items() if not _is_missing(v)}
            if rejected.reason == "missing_title" and pid in seen:  # a shop export's variant row
                rejected = RowRejected(
                    "duplicate_product_id",
                    f"id already used by source row {seen[pid]}, in a row without a title (a "
                    "variant or image row? give one row per product)",
                )
            quarantined.append(
                quarantine_row(record, "ingest", rejected.reason, rejected.detail, pid)
            )
            continue
        if product["product_id"] in seen:
            quarantined.append(
                quarantine_row(
                    record,
                    "ingest",
                    "duplicate_product_id",
                    f"id already used by source row {seen[product['product_id']]}",
                    product["product_id"],
                )
            )
            continue
        seen[product["product_id"]] = source_row
        kept.append({**product, "source_row": source_row})
    return kept, quarantined
