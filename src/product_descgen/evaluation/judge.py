"""LLM judge: which of two descriptions of one product is better, asked in both orders.

Position bias is cancelled by asking twice, teacher as A then student as A; a system wins
only when both orders pick it (``preference.judge_verdicts``). Calls go through the same
cached, resumable step runner as the teacher, so a re-run pays nothing twice.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.evaluation.preference import judge_verdicts
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.llm.types import GenerationSettings, Request
from product_descgen.prompting import PromptSet
from product_descgen.step_runner import run_step, step_requests

ORDERS = {"ab": ("teacher", "student"), "ba": ("student", "teacher")}
_CHOICE = re.compile(r"^[\s\"'*(:]*(?:description\s+|option\s+)?([AB])(?![A-Za-z])", re.IGNORECASE)


def parse_choice(text: str | None) -> str | None:
    """``"A"`` or ``"B"`` from the judge's answer; ``None`` when it names neither first."""
    if not text:
        return None
    match = _CHOICE.match(text)
    return match.group(1).upper() if match else None


def judge_requests(
    pairs: pd.DataFrame,
    prompts: PromptSet,
    order: str,
    model_id: str,
    settings: GenerationSettings,
) -> list[Request]:
    """One judge request per product for ``order`` ("ab": teacher is A; "ba": student is A)."""
    first, second = ORDERS[order]

    def variables(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "product": item["input_text"],
            "description_a": item[first],
            "description_b": item[second],
        }

    items = pairs.to_dict(orient="records")
    return step_requests(items, prompts.require("judge"), "judge", model_id, settings, variables)


def judge_both_orders(
    pairs: pd.DataFrame,
    prompts: PromptSet,
    connection: Connection,
    store: CallStore,
    settings: GenerationSettings,
    progress: bool = True,
) -> pd.DataFrame:
    """Per product (``pairs``: product_id, input_text, teacher, student): the judge's verdict
    from both orders, with each order's raw answer. Calls are cached in ``store``."""
    settings = prompts.with_stop(settings)
    answers = {}
    for order in ORDERS:
        requests = judge_requests(pairs, prompts, order, connection.model_id, settings)
        done = run_step(
            requests, lambda: make_backend(connection, connection.model_dir, settings), store,
            f"judge-{order}", progress, label=f"judge {order}",
        )  # fmt: skip
        answers[order] = pd.DataFrame(
            {
                "product_id": pairs["product_id"].to_numpy(),
                "answer": [done.get(r.key, {}).get("text") for r in requests],
            }
        ).assign(choice=lambda f: f["answer"].map(parse_choice))
    verdicts = judge_verdicts(answers["ab"], answers["ba"])
    for order, frame in answers.items():
        raw = frame[["product_id", "answer"]].rename(columns={"answer": f"{order}_answer"})
        verdicts = verdicts.merge(raw, on="product_id")
    return verdicts
