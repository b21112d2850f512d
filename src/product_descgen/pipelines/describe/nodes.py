"""describe nodes: the student writes, the quality checks flag; nothing is dropped."""

from __future__ import annotations

import logging

import pandas as pd

from product_descgen.evaluation.config import DescribeParams, EvaluationParams
from product_descgen.evaluation.inference import results_frame, run_student, served_student
from product_descgen.llm.backends import Connection
from product_descgen.models import ModelsParams, resolve_model_dir
from product_descgen.quality.gate import gate_problems
from product_descgen.training.config import FinetuneParams
from product_descgen.training.contract import served_prompt

logger = logging.getLogger(__name__)

COLUMNS = [
    "product_id", "title", "category", "description", "flagged", "reasons", "detail",
    "finish_reason",
]  # fmt: skip


def generate_new_descriptions(
    new_inputs: pd.DataFrame,
    student_adapter: str,
    student_openvino: str,
    student_llm: Connection,
    models: ModelsParams,
    finetune: FinetuneParams,
    evaluation: EvaluationParams,
    params: DescribeParams,
) -> pd.DataFrame:
    """One student inference per usable new product, served exactly as evaluation serves it
    (``evaluation.student_generation``; the whole block, as Kedro validates it whole)."""
    if new_inputs.empty:
        logger.warning("describe: no usable new products (see the quarantine reasons)")
        return results_frame([])
    base = resolve_model_dir(models.student, models.cache_dir)
    model = served_student(student_llm, base, student_adapter, student_openvino)
    template, settings = served_prompt(
        student_adapter, finetune.prompt_template, evaluation.student_generation
    )
    return run_student(
        new_inputs, student_llm, model, template, settings, "describe", params.progress
    )


def check_new_descriptions(
    new_inputs: pd.DataFrame,
    new_outputs: pd.DataFrame,
    new_quarantine: pd.DataFrame,
    params: DescribeParams,
) -> pd.DataFrame:
    """Every new product once: its description with ``flagged``/``reasons`` from the quality
    checks, or, for a product data_prep could not use, no description and the reason."""
    rows = []
    merged = new_inputs.merge(new_outputs, on="product_id", how="left", validate="one_to_one")
    records = merged.to_dict(orient="records")
    checked = gate_problems(records, "text", "finish_reason", "error", new_inputs, params.gate)
    for row, problems in zip(records, checked, strict=True):
        text = row["text"] if isinstance(row.get("text"), str) else None
        rows.append(
            {
                "product_id": row["product_id"],
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
        rows.append(
            {
                "product_id": q["product_id"],
                "title": None,
                "category": None,
                "description": None,
                "flagged": True,
                "reasons": [f"quarantined:{q['reason']}"],
                "detail": f"{q['stage']}: {q['detail']} (source row {q['source_row']})",
                "finish_reason": None,
            }
        )
    out = pd.DataFrame(rows, columns=COLUMNS)
    logger.info(
        "describe: %d products, %d flagged (%d quarantined before generation)",
        len(out), int(out["flagged"].sum()), len(new_quarantine),
    )  # fmt: skip
    return out
