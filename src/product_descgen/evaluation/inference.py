"""One-inference description writers: the fine-tuned student and the untuned base student.

The student sees the short prompt it was trained on (``finetune.prompt_template``); the base
student gets the teacher's instructions in one chat prompt (``describe`` step of a prompt file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from product_descgen.callstore import CallStore
from product_descgen.evaluation.stamp import ADAPTER_COLUMN, STUDENT_COLUMN, student_identity
from product_descgen.llm.backends import Backend, Connection, make_backend
from product_descgen.llm.types import GenerationSettings, Request
from product_descgen.models import model_fingerprint
from product_descgen.prompting import PromptSet, render
from product_descgen.step_runner import keyed, missing_reasons, run_step

logger = logging.getLogger(__name__)

OUTPUT_COLUMNS = [
    "product_id", "text", "prompt_tokens", "completion_tokens", "latency_s", "finish_reason",
    "error",
]  # fmt: skip


def student_requests(items: pd.DataFrame, template: str) -> list[Request]:
    """The student's prompt per product: its training template filled from the row."""
    return [
        Request(key=str(row["product_id"]), prompt=template.format(**row))
        for row in items.to_dict(orient="records")
    ]


class ServedStudent(BaseModel):
    """The fine-tuned student as every stage serves it (evaluation, describe, the speed test):
    the connection, the model it loads (with the adapter, unless merged into an export) and
    the serving contract it was trained with (prompt template, generation settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: Connection
    model_dir: str | None
    adapter: str | None
    template: str
    settings: GenerationSettings
    trained_adapter: str | None = None  # the trained adapter's files' fingerprint (reports)


def served_model(
    connection: Connection, adapter: str, exported: str
) -> tuple[str | None, str | None]:
    """What serves the fine-tuned student under ``connection``: the exported OpenVINO model
    (adapter merged in: made from ``adapter``, or this fails) for ``openvino``; the connection's
    base model and the peft adapter otherwise (a server serves its own: ``connection.model``)."""
    if connection.backend == "openvino":
        from product_descgen.export.student import require_export_of

        require_export_of(exported, adapter)
        return exported, None
    return connection.model_dir, adapter


def stored_results(
    requests: Sequence[Request],
    backend: Callable[[], Backend],
    store: CallStore,
    desc: str,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per request (:func:`keyed`), in order: its stored answer, generating only what
    ``store`` lacks (the backend is built only then); a failed call keeps its error. Most calls
    failing with one error fails the step (:class:`FailureWatch`)."""
    done = run_step(requests, backend, store, desc, progress, label=desc)
    errors = missing_reasons(requests, done, store)
    failed = {"text": None, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0}
    rows = []
    for request in requests:
        call = done.get(request.key)
        outcome = (
            {column: call[column] for column in OUTPUT_COLUMNS[1:-1]} | {"error": None}
            if call
            else failed | {"error": errors[request.key]}
        )
        rows.append({"product_id": request.meta["item_id"], **outcome})
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


def run_student(
    items: pd.DataFrame,
    student: ServedStudent,
    store: CallStore,
    desc: str,
    progress: bool = True,
) -> pd.DataFrame:
    """The fine-tuned student on ``items``: one inference each, as a results table. Each answer
    is stored as it comes (``store``), so a re-run after a crash, or describe after evaluation,
    asks only for prompts this student has not answered with these settings (the key holds the
    trained student's export or adapter by what its files hold, not where they lie, and how it
    is served). Its rows carry the student's identity (column ``student``)."""
    served = served_files(student)
    requests = keyed(
        student_requests(items, student.template), step="student",
        model=student.connection.model_id, served=served, settings=student.settings.cache_key(),
    )  # fmt: skip
    outputs = stored_results(
        requests,
        lambda: make_backend(
            student.connection, student.model_dir, student.settings, adapter=student.adapter
        ),
        store, desc, progress,
    )  # fmt: skip
    return outputs.assign(
        **{STUDENT_COLUMN: identity(student), ADAPTER_COLUMN: student.trained_adapter}
    )


def served_files(student: ServedStudent) -> list[str | None]:
    """The served export or base and adapter, by their files' fingerprints."""
    return [
        (model_fingerprint(p) if p else None) or p for p in (student.model_dir, student.adapter)
    ]


def identity(student: ServedStudent) -> str:
    """The served student as evaluation stamps its outputs (:mod:`.stamp`)."""
    return student_identity(
        student.connection.model_id, served_files(student), student.template,
        student.settings.cache_key(),
    )  # fmt: skip


def baseline_requests(
    items: pd.DataFrame, prompts: PromptSet, rules: dict[str, Any]
) -> list[Request]:
    """The base student's prompt per product: the teacher's instructions, one step."""
    prompts.require("describe")
    return [
        render(
            prompts,
            "describe",
            str(row["product_id"]),
            {"product": row["input_text"], "audience": row["audience"], "rules": rules},
            {},
        )  # fmt: skip
        for row in items.to_dict(orient="records")
    ]
