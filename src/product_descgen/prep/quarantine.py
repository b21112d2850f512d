"""Quarantine records: every row that cannot be used is kept here with a reason."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

QUARANTINE_COLUMNS = ["product_id", "source_row", "stage", "reason", "detail", "record"]


class RowRejected(ValueError):
    """A row cannot be used; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def to_json(record: dict[str, Any]) -> str:
    """A row as JSON, whatever its values (NaN, numpy scalars), so nothing is lost."""
    return json.dumps(record, ensure_ascii=False, default=str)


def quarantine_row(
    record: dict[str, Any], stage: str, reason: str, detail: str, product_id: Any = None
) -> dict[str, Any]:
    """One quarantine-table row."""
    return {
        "product_id": None if product_id is None else str(product_id),
        "source_row": int(record.get("source_row", -1)),
        "stage": stage,
        "reason": reason,
        "detail": detail,
        "record": to_json(record),
    }


def quarantine_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Quarantine rows as a table with a fixed schema (also when empty)."""
    frame = pd.DataFrame(rows, columns=QUARANTINE_COLUMNS)
    return frame.astype({"source_row": "int64"})


def require_kept(stage: str, kept: int, quarantined: pd.DataFrame, min_share: float) -> None:
    """Fail ``stage`` when it kept less than ``min_share`` of its rows (or none): a catalogue
    in the wrong format or the wrong column mapping, not a few bad rows. ``min_share`` 0: never.
    The message counts the reasons and shows the first rows: the quarantine table is not saved
    when a stage fails."""
    total = kept + len(quarantined)
    if min_share > 0 and total and (kept == 0 or kept / total < min_share):
        reasons = quarantined["reason"].value_counts().head(5).to_dict()
        examples = "; ".join(
            f"row {row.source_row} ({row.product_id}): {row.reason}: {str(row.detail)[:120]}"
            for row in quarantined.head(3).itertuples()
        )
        raise ValueError(
            f"{stage}: kept {kept} of {total} rows ({kept / total:.0%}), below "
            f"data_prep.limits.min_kept_share ({min_share:.0%}); quarantined by reason: "
            f"{reasons}; first rows: {examples}"
        )
