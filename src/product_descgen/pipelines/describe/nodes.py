"""describe nodes: the student writes, the quality checks flag; nothing is dropped."""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.evaluation.config import DescribeParams
from product_descgen.evaluation.inference import OUTPUT_COLUMNS, ServedStudent, run_student
from product_descgen.prep.config import DataPrepParams
from product_descgen.quality.gate import OutputFields, gate_problems

logger = logging.getLogger(__name__)

COLUMNS = [
    "product_id", "source_row", "title", "category", "description", "flagged", "reasons",
    "detail", "finish_reason",
]  # fmt: skip


def generate_new_descriptions(
    new_inputs: pd.DataFrame,
    served_student: ServedStudent,
    student_call_store: CallStore,
    params: DescribeParams,
) -> pd.DataFrame:
    """One student inference per usable new product, served exactly as evaluation serves it
    (``serve_student``); answers are stored as they come, so a re-run resumes."""
    if new_inputs.empty:
        logger.warning("describe: no usable new products (see the quarantine reasons)")
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return run_student(new_inputs, served_student, student_call_store, "describe", params.progress)


def quarantined_names(row: dict[str, Any], data_prep: DataPrepParams) -> tuple[Any, Any]:
    """The title and category a quarantined product was given, where its record has them as
    text: the catalogue's own columns at ingest, the canonical fields after."""
    try:
        record = json.loads(row["record"])
    except (TypeError, ValueError):
        return None, None
    columns = data_prep.columns
    names = (columns.title, columns.category) if row["stage"] == "ingest" else ("title", "category")
    values = [record.get(name) if isinstance(record, dict) and name else None for name in names]
    return tuple(v if isinstance(v, str) and v.strip() else None for v in values)


def reference_catalogue(new_inputs: pd.DataFrame, model_inputs: pd.DataFrame) -> pd.DataFrame:
    """What the checks compare new products against: the batch and the training catalogue
    (its version of a product the batch gives again left out). The batch alone made a
    product's flags depend on the rest of the day's file, and a batch under the off-product
    check's ``min_pool`` went unchecked."""
    known = model_inputs[~model_inputs["product_id"].isin(new_inputs["product_id"])]
    return pd.concat([new_inputs, known], ignore_index=True)


def check_new_descriptions(
    new_inputs: pd.DataFrame,
    new_outputs: pd.DataFrame,
    new_quarantine: pd.DataFrame,
    model_inputs: pd.DataFrame,
    params: DescribeParams,
    data_prep: DataPrepParams,
) -> pd.DataFrame:
    """Every new product once, in the input's order (``source_row``: its line or row there):
    its description with ``flagged``/``reasons`` from the quality checks (against
    :func:`reference_catalogue`), or, for a product data_prep could not use, no description
    and the reason (with its title and category where it had them, read with data_prep's
    column mapping)."""
    rows = []
    merged = new_inputs.merge(new_outputs, on="product_id", how="left", validate="one_to_one")
    records = merged.to_dict(orient="records")
    checked = gate_problems(
        records, OutputFields(), reference_catalogue(new_inputs, model_inputs), params.gate,
        params.embedding_model,
    )  # fmt: skip
    for row, found in zip(records, checked, strict=True):
        text = row["text"] if isinstance(row.get("text"), str) else None
        problems = list(found)
        if not pd.isna(row.get("cut_from_tokens", pd.NA)):
            problems.append(
                (
                    "input_cut",
                    f"the input was cut to fit the student's input budget "
                    f"({row['cut_from_tokens']} tokens, {row['input_tokens']} kept: the original "
                    "description's end, and its last attributes if need be): what was cut is not "
                    "in the description",
                )
            )
        rows.append(
            {
                "product_id": row["product_id"],
                "source_row": row.get("source_row"),  # None: inputs built elsewhere
                "title": row["title"],
                "category": row["category"],
                "description": text,
                "flagged": bool(problems),
                "reasons": list(dict.fromkeys(code for code, _ in problems)),
                "detail": "; ".join(f"{code}: {detail}" for code, detail in problems),
                "finish_reason": row.get("finish_reason"),
            }
        )
    for q in new_quarantine.to_dict(orient="records"):
        title, category = quarantined_names(q, data_prep)
        rows.append(
            {
                "product_id": q["product_id"],
                "source_row": q["source_row"],
                "title": title,
                "category": category,
                "description": None,
                "flagged": True,
                "reasons": [f"quarantined:{q['reason']}"],
                "detail": f"{q['stage']}: {q['detail']} (source row {q['source_row']})",
                "finish_reason": None,
            }
        )
    # in the input's order: a product given twice has its lines in the order it was given
    out = pd.DataFrame(rows, columns=COLUMNS).sort_values("source_row", kind="stable")
    out = out.reset_index(drop=True)
    logger.info(
        "describe: %d products, %d flagged (%d quarantined before generation)",
        len(out), int(out["flagged"].sum()), len(new_quarantine),
    )  # fmt: skip
    return out
