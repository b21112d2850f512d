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


def test_save_load_round_trip(tmp_path):
    dataset = JSONLinesDataset(filepath=str(tmp_path / "sub" / "out.jsonl"))
    data = pd.DataFrame([{"a": 1, "b": "é"}, {"a": 2, "b": None}])
    dataset.save(data)
    assert dataset.exists()
    loaded = dataset.load().drop(columns="_line")
    assert loaded.to_dict(orient="records")[0] == {"a": 1, "b": "é"}


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        JSONLinesDataset(filepath=str(tmp_path / "nope.jsonl")).load()
