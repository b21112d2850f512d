import json
import math

import numpy as np
import pytest
from kedro.io import DatasetError

from product_descgen.datasets import StrictJSONDataset


def test_non_finite_floats_are_saved_as_null(tmp_path):
    path = tmp_path / "metrics.json"
    data = {
        "ratio": float("nan"),
        "memory": np.float64("nan"),
        "share": np.float32(0.5),
        "count": np.int64(3),
        "rows": [1.0, float("inf"), {"x": -math.inf}],
        "pair": (float("nan"), "a"),
    }
    StrictJSONDataset(filepath=str(path)).save(data)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "ratio": None,
        "memory": None,
        "share": 0.5,
        "count": 3,
        "rows": [1.0, None, {"x": None}],
        "pair": [None, "a"],
    }
    assert StrictJSONDataset(filepath=str(path)).load()["ratio"] is None


def test_what_is_not_json_still_fails_the_save(tmp_path):
    with pytest.raises(DatasetError, match="not JSON serializable"):
        StrictJSONDataset(filepath=str(tmp_path / "m.json")).save({"when": object()})


def test_every_json_output_in_the_catalog_is_strict():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "conf"
    types = [
        entry.get("type")
        for file in root.glob("*/catalog*.yml")
        for entry in (yaml.safe_load(file.read_text()) or {}).values()
        if isinstance(entry, dict)
    ]
    assert "json.JSONDataset" not in types
    assert types.count("product_descgen.datasets.StrictJSONDataset") >= 7
