"""teacher_generation nodes: thin adapters over :mod:`product_descgen.teacher` and ``llm``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.llm.types import GenerationSettings
from product_descgen.models import ModelsParams, served_model_dir
from product_descgen.prep.split import SPLITS
from product_descgen.prompting import PromptSet
from product_descgen.quality.checks import words
from product_descgen.quality.gate import gate_problems
from product_descgen.teacher.config import TeacherParams
from product_descgen.teacher.generate import (
    draft_variables,
    refine_variables,
    run_step,
    step_requests,
)

logger = logging.getLogger(__name__)

DISTILL_COLUMNS = ["product_id", "split", "category", "title", "audience", "input_text", "target"]


def select_teacher_inputs(
    train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, params: TeacherParams
) -> pd.DataFrame:
    """Products for the teacher, at most ``max_examples``, each split scaled alike."""
    parts = dict(zip(SPLITS, (train, validation, test), strict=True))
    total = sum(len(p) for p in parts.values())
    scale = min(1.0, params.max_examples / total) if total else 1.0
    chosen = [
        part.sample(n=round(len(part) * scale), random_state=params.seed).assign(split=name)
        if scale < 1.0
        else part.assign(split=name)
        for name, part in parts.items()
    ]
    out = pd.concat(chosen, ignore_index=True)
    logger.info("Teacher inputs: %d of %d products", len(out), total)
    return out


def _model_id(connection: Connection, model_dir: str) -> str:
    """What generated the text, for cache keys: the server's model, or the local model and how
    it is served (engines and weight formats give different texts)."""
    if connection.backend == "openai" and connection.model:
        return connection.model
    return f"{model_dir}|{connection.serving}"


def _run(
    step: str,
    items: list[dict[str, Any]],
    variables: Any,
    prompts: PromptSet,
    connection: Connection,
    store: CallStore,
    models: ModelsParams,
    settings: GenerationSettings,
    progress: bool,
) -> pd.DataFrame:
    model = served_model_dir(models.teacher, models.cache_dir, connection)
    model_id = _model_id(connection, model)
    settings = prompts.with_stop(settings)
    requests = step_requests(items, prompts, step, model_id, settings, variables)
    done = run_step(
        requests, lambda: make_backend(connection, model, settings), store, step, progress
    )
    errors = store.last_errors(r.key for r in requests if r.key not in done)
    rows = []
    for item, request in zip(items, requests, strict=True):
        call = done.get(request.key)
        rows.append(
            {
                "product_id": item["product_id"],
                f"{step}_key": request.key,
                step: call["text"] if call else None,
                f"{step}_finish_reason": call["finish_reason"] if call else None,
                f"{step}_error": None if call else errors.get(request.key, "not generated"),
            }
        )
    return pd.DataFrame(rows)


def generate_drafts(
    teacher_inputs: pd.DataFrame,
    teacher_prompts: dict[str, Any],
    teacher_llm: Connection,
    teacher_call_store: CallStore,
    models: ModelsParams,
    params: TeacherParams,
) -> pd.DataFrame:
    """Step 1: the teacher drafts a description from the product facts."""
    prompts = PromptSet.model_validate(teacher_prompts).require("draft", "refine")
    return _run(
        "draft",
        teacher_inputs.to_dict(orient="records"),
        lambda item: draft_variables(item, params.rules),
        prompts,
        teacher_llm,
        teacher_call_store,
        models,
        params.draft,
        params.progress,
    )


def generate_refinements(
    teacher_inputs: pd.DataFrame,
    teacher_drafts: pd.DataFrame,
    teacher_prompts: dict[str, Any],
    teacher_llm: Connection,
    teacher_call_store: CallStore,
    models: ModelsParams,
    params: TeacherParams,
) -> pd.DataFrame:
    """Step 2: the teacher rewrites each draft to the quality and format rules."""
    prompts = PromptSet.model_validate(teacher_prompts).require("draft", "refine")
    merged = teacher_inputs.merge(teacher_drafts, on="product_id", validate="one_to_one")
    has_draft = merged["draft"].notna()
    refined = _run(
        "refine",
        merged.loc[has_draft].to_dict(orient="records"),
        lambda item: refine_variables(item, params.rules),
        prompts,
        teacher_llm,
        teacher_call_store,
        models,
        params.refine,
        params.progress,
    )
    no_draft = pd.DataFrame(
        {
            "product_id": merged.loc[~has_draft, "product_id"],
            "refine_error": "draft failed: " + merged.loc[~has_draft, "draft_error"].astype(str),
        }
    )
    out = pd.concat([refined, no_draft], ignore_index=True)
    return teacher_drafts.merge(out, on="product_id", how="left", validate="one_to_one")


def gate_teacher_outputs(
    teacher_inputs: pd.DataFrame, teacher_outputs: pd.DataFrame, params: TeacherParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quality gate: accepted outputs become targets; rejected ones keep their reasons."""
    merged = teacher_inputs.merge(teacher_outputs, on="product_id", validate="one_to_one")
    records = merged.to_dict(orient="records")
    checked = gate_problems(
        records, "refine", "refine_finish_reason", "refine_error", teacher_inputs, params.gate
    )
    accepted, rejected = [], []
    for row, problems in zip(records, checked, strict=True):
        if problems:
            rejected.append(
                {
                    "product_id": row["product_id"],
                    "split": row["split"],
                    "reasons": ",".join(dict.fromkeys(code for code, _ in problems)),
                    "detail": "; ".join(f"{code}: {detail}" for code, detail in problems),
                    "draft": row.get("draft"),
                    "text": row.get("refine"),
                }
            )
        else:
            accepted.append({**{c: row[c] for c in DISTILL_COLUMNS[:-1]}, "target": row["refine"]})
    logger.info("Teacher gate: %d accepted, %d rejected", len(accepted), len(rejected))
    total = len(accepted) + len(rejected)
    if (
        total
        and params.min_accepted_share
        and len(accepted) < max(1, params.min_accepted_share * total)
    ):
        reasons = pd.Series(
            [code for r in rejected for code in r["reasons"].split(",")]
        ).value_counts()
        raise ValueError(
            f"teacher gate: accepted {len(accepted)} of {total} outputs, below "
            f"teacher_generation.min_accepted_share ({params.min_accepted_share:.0%}); "
            f"rejected by reason: {reasons.head(6).to_dict()} (see teacher_rejections)"
        )
    accepted_frame = pd.DataFrame(accepted, columns=DISTILL_COLUMNS)
    accepted_frame["target_words"] = accepted_frame["target"].map(lambda t: len(words(t)))
    rejected_frame = pd.DataFrame(
        rejected, columns=["product_id", "split", "reasons", "detail", "draft", "text"]
    )
    return accepted_frame, rejected_frame


def build_distillation_sets(
    accepted: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train/validation/test distillation sets: input text and target description."""
    return tuple(
        accepted.loc[accepted["split"] == name].drop(columns="split").reset_index(drop=True)
        for name in SPLITS
    )


def export_call_log(teacher_call_store: CallStore, teacher_outputs: pd.DataFrame) -> pd.DataFrame:
    """Every teacher call so far (all runs): step, tokens, latency, backend, attempts, error."""
    del teacher_outputs  # only orders this node after generation
    return teacher_call_store.calls().drop(columns=["text"])
