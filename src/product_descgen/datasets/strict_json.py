"""``json.JSONDataset`` that writes strict JSON: a float that is not finite is saved as null.

Python's ``json`` writes NaN and infinities as bare ``NaN`` / ``Infinity`` tokens, which strict
readers (``JSON.parse``, ``jq``, most dashboards) refuse; a metric that could not be measured
(a system that wrote no text, GPU memory on a CPU run) is null instead.
"""

from __future__ import annotations

import math
from typing import Any

from kedro_datasets.json import JSONDataset


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float (numpy's too) inside dicts, lists and tuples
    replaced by ``None``."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):  # numpy.float64 is a float
        return None
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return finite_or_null(value.item())  # other numpy scalars (float32, int64, bool_)
    return value


class StrictJSONDataset(JSONDataset):
    """A JSON file, as ``json.JSONDataset``; non-finite floats are saved as null and anything
    else that is not JSON fails the save (``allow_nan`` off)."""

    DEFAULT_SAVE_ARGS: dict[str, Any] = {**JSONDataset.DEFAULT_SAVE_ARGS, "allow_nan": False}

    def save(self, data: Any) -> None:
        super().save(finite_or_null(data))
