"""teacher_generation nodes: thin adapters over :mod:`product_descgen.teacher` and ``llm``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.llm.backends import Connection
from product_descgen.prep.split import SPLITS, apportion
from product_descgen.prompting import PromptSet
from product_descgen.quality.checks import word_count
from product_descgen.quality.gate import OutputFields, gate_problems
from product_descgen.teacher.config import TeacherParams
from product_descgen.teacher.generate import generate_step

logger = logging.getLogger(__name__)

DISTILL_COLUMNS = ["product_id", "split", "category", "title", "audience", "input_text", "target"]


def select_teacher_inputs(
    train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, params: TeacherParams
) -> pd.DataFrame:
    """Products for the teacher, at most ``max_examples`` (each costs two paid calls), each
    split scaled alike and kept non-empty where the cap allows (:func:`apportion`)."""
    parts = dict(zip(SPLITS, (train, validation, test), strict=True))
    total = sum(len(p) for p in parts.values())
    counts = apportion([len(p) for p in parts.values()], params.max_examples)
    chosen = [
        part.sample(n=n, random_state=params.seed).assign(split=name)
        if n < len(part)
        else part.assign(split=name)
        for (name, part), n in zip(parts.items(), counts, strict=True)
    ]
    out = pd.concat(chosen, ignore_index=True)
    logger.info("Teacher inputs: %d of %d products", len(out), total)
    return out


def generate_drafts(
    teacher_inputs: pd.DataFrame,
    teacher_prompts: dict[str, Any],
    teacher_llm: Connection,
    teacher_call_store: CallStore,
    params: TeacherParams,
) -> pd.DataFrame:
    """Step 1: the teacher drafts a description from the product facts."""
    prompts = PromptSet.model_validate(teacher_prompts).require("draft", "refine")
    items = teacher_inputs.to_dict(orient="records")
    return generate_step("draft", items, prompts, teacher_llm, teacher_call_store, params)


def generate_refinements(
    teacher_inputs: pd.DataFrame,
    teacher_drafts: pd.DataFrame,
    teacher_prompts: dict[str, Any],
    teacher_llm: Connection,
    teacher_call_store: CallStore,
    params: TeacherParams,
) -> pd.DataFrame:
    """Step 2: the teacher rewrites each draft to the quality and format rules."""
    prompts = PromptSet.model_validate(teacher_prompts).require("draft", "refine")
    merged = teacher_inputs.merge(teacher_drafts, on="product_id", validate="one_to_one")
    has_draft = merged["draft"].notna()
    items = merged.loc[has_draft].to_dict(orient="records")
    refined = generate_step("refine", items, prompts, teacher_llm, teacher_call_store, params)
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
    fields = OutputFields("refine", "refine_finish_reason", "refine_error")
    checked = gate_problems(records, fields, teacher_inputs, params.gate, params.embedding_model)
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
    accepted_frame["target_words"] = accepted_frame["target"].map(word_count)
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
    """Every teacher call so far (all runs): step, tokens, latency, backend, attempts, error;
    ``in_outputs`` marks the successful calls whose text is in this run's teacher outputs."""
    used = set(teacher_outputs["draft_key"]) | set(teacher_outputs["refine_key"].dropna())
    calls = teacher_call_store.calls().drop(columns=["text"])
    return calls.assign(in_outputs=calls["key"].isin(used) & calls["ok"].astype(bool))
