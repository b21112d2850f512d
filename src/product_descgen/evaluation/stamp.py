"""Which evaluation an output belongs to, so that a report never mixes two.

Each evaluation summary carries an ``evaluated`` stamp: the digest of the student texts it was
computed from (metrics, judge, human preference) or the identity of the served student it
measured (speed). The student's outputs carry that identity in a column. An evaluation run
stopped part-way rewrites its first outputs and leaves the rest from the run before; reporting
compares the stamps with the student outputs it shows and refuses a mix, and refuses outputs of
another trained student than the newest adapter (a finetune run after the evaluation).

The finetune run writes its adapter, training history and vice report one after the other; the
adapter's serving contract and the vice report carry the history's digest, so a run stopped
between them cannot leave a report charting one training beside another's student.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

STAMP = "evaluated"
STUDENT_COLUMN = "student"  # in the student's outputs: the served student's identity
ADAPTER_COLUMN = "adapter"  # in the student's outputs: the trained adapter's fingerprint
HISTORY_KEY = "training_history"  # in the adapter's contract and the vice report: its digest


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def student_identity(model_id: str, served: list[str | None], template: str, settings: dict) -> str:
    """The served student: its model (and its files' fingerprints), prompt and settings."""
    return _digest([model_id, served, template, settings])


def _texts_by_product(frame: pd.DataFrame, column: str) -> str:
    """The digest of each product's text in ``column``, whatever the row order."""
    rows = sorted(
        (str(p), t if isinstance(t, str) else None)
        for p, t in zip(frame["product_id"], frame[column], strict=True)
    )
    return _digest(rows)


def texts_digest(student_outputs: pd.DataFrame) -> str:
    """The student texts an output was computed from, whatever their row order."""
    return _texts_by_product(student_outputs, "text")


def history_digest(history: pd.DataFrame) -> str:
    """The per-epoch training history as written (a parquet round trip keeps it)."""
    return _digest(json.loads(history.to_json(orient="split", index=False, double_precision=15)))


def require_one_training(
    contract: dict[str, Any] | None, history: pd.DataFrame, vice_report: dict[str, Any]
) -> None:
    """Fail when the training history or the vice report is not of the training that wrote
    the newest adapter (``contract``: its serving contract): a finetune run stopped after
    saving some of them leaves the others from the run before. Artifacts written before the
    digest was kept pass."""
    digest = history_digest(history)
    stale = [
        name
        for name, record in (("student_adapter", contract or {}), ("vice_report", vice_report))
        if record.get(HISTORY_KEY, digest) != digest
    ]
    if stale:
        raise ValueError(
            f"training_history is not of the training that wrote {' and '.join(stale)} (a "
            "finetune run stopped part-way leaves the rest from the run before): re-run kedro "
            "run --pipeline finetune, then evaluation and reporting"
        )


def references_digest(eval_set: pd.DataFrame) -> str:
    """The teacher references a student was scored against, whatever their row order."""
    return _texts_by_product(eval_set, "reference")


def texts_stamp(
    student_outputs: pd.DataFrame, eval_set: pd.DataFrame | None = None
) -> dict[str, dict[str, str]]:
    """The stamp of a summary computed from ``student_outputs`` (and, for one that compares
    them with the teacher's references, from ``eval_set``)."""
    stamp = {"texts": texts_digest(student_outputs)}
    if eval_set is not None:
        stamp["references"] = references_digest(eval_set)
    return {STAMP: stamp}


def require_trained_student(student_outputs: pd.DataFrame, adapter: str | None) -> None:
    """Fail when ``student_outputs`` were written by another trained student than the newest
    adapter (fingerprint ``adapter``): finetune ran after evaluation, and a report would show
    the new training beside the earlier student's evaluation. Outputs written before the
    column was kept, or a student whose adapter is unknown, pass."""
    if ADAPTER_COLUMN not in student_outputs or adapter is None:
        return
    evaluated = set(student_outputs[ADAPTER_COLUMN].dropna())
    if evaluated and evaluated != {adapter}:
        raise ValueError(
            "the evaluation's student outputs are of another trained student than the newest "
            "student_adapter (finetune ran after evaluation: the report would show the new "
            "training beside the earlier student's figures): re-run kedro run --pipeline "
            "evaluation, then reporting"
        )


def require_one_evaluation(
    student_outputs: pd.DataFrame,
    summaries: dict[str, dict],
    eval_set: pd.DataFrame | None = None,
) -> None:
    """Fail when a summary was computed from other student texts, measured another student,
    or scored against other teacher references (``eval_set``, where given) than the report
    shows; a summary without a stamp (written before stamps were kept) is warned about."""
    expected = {"texts": texts_digest(student_outputs)}
    if eval_set is not None:
        expected["references"] = references_digest(eval_set)
    if STUDENT_COLUMN in student_outputs and student_outputs[STUDENT_COLUMN].nunique() == 1:
        expected["student"] = str(student_outputs[STUDENT_COLUMN].iloc[0])
    stale, unstamped = [], []
    for name, summary in summaries.items():
        stamp = summary.get(STAMP)
        if not stamp:
            unstamped.append(name)
        elif any(expected.get(k, v) != v for k, v in stamp.items()):
            stale.append(name)
    if unstamped:
        logger.warning(
            "%s carry no evaluation stamp (written by an earlier version): re-run evaluation "
            "to check that the report's figures are of one evaluation",
            ", ".join(unstamped),
        )
    if stale:
        raise ValueError(
            f"{', '.join(stale)} were computed for other student texts, another student or "
            "other teacher references than student_outputs and eval_set hold (an evaluation "
            "run stopped part-way leaves its later outputs from the run before): re-run kedro "
            "run --pipeline evaluation, then reporting"
        )
