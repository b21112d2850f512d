"""LLM judge: which of two descriptions of one product is better, asked in both orders.

Position bias is cancelled by asking twice, teacher as A then student as A; a system wins
only when both orders pick it (``preference.judge_verdicts``). Calls go through the same
cached, resumable step runner as the teacher, so a re-run pays nothing twice.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from product_descgen.llm.types import GenerationSettings, Request
from product_descgen.prompting import PromptSet
from product_descgen.teacher.generate import step_requests

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
