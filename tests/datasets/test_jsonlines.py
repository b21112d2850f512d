import pandas as pd
import pytest
from kedro.io import DatasetError

from product_descgen.datasets import JSONLinesDataset


def test_load_keeps_bad_lines_as_error_rows(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": 1, "t": "a\u2028b"}\n\n{"id": 2,\n[1, 2]\n{"id": 3}\n', encoding="utf-8"
    )
    frame = JSONLinesDataset(filepath=str(path)).load()
    assert frame["_line"].tolist() == [1, 3, 4, 5]
    assert frame.loc[0, "t"] == "a\u2028b"  # a JSON-legal line separator does not split a line
    errors = frame["_load_error"].dropna().tolist()
    assert errors[0].startswith("line 3: ")
    assert errors[1] == "line 4: a JSON list, not an object"
    # the bad lines' text, so their quarantine rows show what they held
    assert frame["_raw_line"].dropna().tolist() == ['{"id": 2,', "[1, 2]"]


def test_save_load_round_trip(tmp_path):
    dataset = JSONLinesDataset(filepath=str(tmp_path / "sub" / "out.jsonl"))
    data = pd.DataFrame([{"a": 1, "b": "é"}, {"a": 2, "b": None}])
    dataset.save(data)
    assert dataset.exists()
    loaded = dataset.load().drop(columns="_line")
    assert loaded.to_dict(orient="records")[0] == {"a": 1, "b": "é"}


def test_no_rows_save_an_empty_file_in_place_of_the_last(tmp_path):
    path = tmp_path / "out.jsonl"
    dataset = JSONLinesDataset(filepath=str(path))
    dataset.save(pd.DataFrame([{"a": 1}]))
    dataset.save(pd.DataFrame(columns=["a"]))
    assert path.read_text() == ""  # not "\n": a line-by-line reader would fail on it
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no partial file left


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        JSONLinesDataset(filepath=str(tmp_path / "nope.jsonl")).load()


def test_a_line_not_in_the_encoding_costs_that_line_only(tmp_path):
    """One byte of Latin-1 in a UTF-8 file: that line is an error row naming it, not a failed
    load; a byte order mark before the first line is not an error."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": 1}\n{"id": 2, "t": "Caf\xe9"}\n{"id": 3, "t": "Caf\xc3\xa9"}\n'
    )
    frame = JSONLinesDataset(filepath=str(path)).load()
    assert frame["_line"].tolist() == [1, 2, 3]
    assert frame.loc[0, "id"] == 1 and frame.loc[2, "t"] == "Café"
    assert frame["_load_error"].dropna().tolist() == [
        "line 2: not utf-8 text (byte 0xe9 at byte 20 of the line)"
    ]
    assert frame["_raw_line"].dropna().tolist() == ['{"id": 2, "t": "Caf\ufffd"}']


def test_a_long_bad_line_is_kept_cut(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "' + "x" * 5000 + "\n", encoding="utf-8")
    [raw_line] = JSONLinesDataset(filepath=str(path)).load()["_raw_line"].tolist()
    assert raw_line.startswith('{"id": "xxx') and raw_line.endswith("(3008 more characters)")


def test_a_utf16_file_still_loads(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1, "t": "Café"}\n{"id": 2}\n', encoding="utf-16")
    frame = JSONLinesDataset(filepath=str(path), encoding="utf-16").load()
    assert frame["t"].tolist()[0] == "Café" and frame["id"].tolist() == [1, 2]
