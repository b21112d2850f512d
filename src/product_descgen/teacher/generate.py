"""One teacher step (draft or refine) over many products, through the resumable step runner."""

from __future__ import annotations

from typing import Any

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.prompting import PromptSet
from product_descgen.step_runner import missing_reasons, run_step, step_requests
from product_descgen.teacher.config import TeacherParams


def draft_variables(item: dict[str, Any], rules: Any) -> dict[str, Any]:
    """Template variables of the draft step for one product."""
    return {"product": item["input_text"], "audience": item["audience"], "rules": rules}


def refine_variables(item: dict[str, Any], rules: Any) -> dict[str, Any]:
    """Template variables of the refine step: the product and its draft."""
    return {**draft_variables(item, rules), "draft": item["draft"]}


def generate_step(
    step: str,
    items: list[dict[str, Any]],
    prompts: PromptSet,
    connection: Connection,
    store: CallStore,
    params: TeacherParams,
) -> pd.DataFrame:
    """One teacher step ("draft" or "refine") over ``items``: per product its call key, text,
    finish reason, or the error of its last failed call."""
    settings = prompts.with_stop(params.draft if step == "draft" else params.refine)
    step_variables = draft_variables if step == "draft" else refine_variables
    requests = step_requests(
        items, prompts, step, connection.model_id, settings,
        lambda item: step_variables(item, params.rules),
    )  # fmt: skip
    done = run_step(
        requests, lambda: make_backend(connection, connection.model_dir, settings), store, step,
        params.progress,
    )  # fmt: skip
    errors = missing_reasons(requests, done, store)
    rows = []
    for item, request in zip(items, requests, strict=True):
        call = done.get(request.key)
        rows.append(
            {
                "product_id": item["product_id"],
                f"{step}_key": request.key,
                step: call["text"] if call else None,
                f"{step}_finish_reason": call["finish_reason"] if call else None,
                f"{step}_error": None if call else errors[request.key],
            }
        )
    return pd.DataFrame(rows)
