"""Product tables on disk: the ``attributes`` mapping travels as a JSON string column.

Parquet would turn thousands of distinct attribute keys into a struct column; a JSON string
keeps one portable column (CSV-friendly too) and preserves key order.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

PRODUCT_COLUMNS = ["product_id", "title", "category", "attributes", "description", "source_row"]


def products_to_frame(
    products: list[dict[str, Any]], extra: list[str] | None = None
) -> pd.DataFrame:
    """Canonical products -> table (attributes as JSON)."""
    columns = PRODUCT_COLUMNS + (extra or [])
    rows = [{**p, "attributes": json.dumps(p["attributes"], ensure_ascii=False)} for p in products]
    return pd.DataFrame(rows, columns=columns).astype({"source_row": "int64"})


def frame_to_products(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Table -> canonical products (attributes back to dicts)."""
    return [
        {**row, "attributes": json.loads(row["attributes"])}
        for row in frame.to_dict(orient="records")
    ]
