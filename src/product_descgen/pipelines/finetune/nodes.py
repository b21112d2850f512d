"""finetune nodes: thin adapters over :mod:`product_descgen.training`."""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from product_descgen.evaluation.stamp import HISTORY_KEY, history_digest
from product_descgen.export import student
from product_descgen.llm.backends import Connection
from product_descgen.training.config import FinetuneParams, build_ludwig_config
from product_descgen.training.contract import serving_contract
from product_descgen.training.train import train_student

logger = logging.getLogger(__name__)


def build_finetune_config(
    distill_train: pd.DataFrame, student_base_model: str, params: FinetuneParams
) -> dict[str, Any]:
    """The validated Ludwig config; every input problem fails here, before training."""
    if distill_train.empty:
        raise ValueError("the training set is empty: teacher_generation accepted no examples")
    return build_ludwig_config(params, student_base_model, list(distill_train.columns))


def train_student_model(
    ludwig_config: dict[str, Any],
    distill_train: pd.DataFrame,
    distill_validation: pd.DataFrame,
    validation_examples: pd.DataFrame,
    params: FinetuneParams,
) -> tuple[Any, Any, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Train; return the Ludwig model, the peft adapter with its serving contract (template,
    stop strings), the per-epoch history, the probe outputs and the vice report. The probe
    describes validation products (``validation_examples``, accepted by the teacher's gate or
    not), so a strict gate does not leave it too few texts."""
    result = train_student(
        ludwig_config, distill_train, distill_validation, validation_examples, params
    )
    history = result.history
    flagged = history.loc[history["flagged"], ["epoch", "flags"]] if len(history) else history
    report = {
        "epochs": len(history),
        "flagged_epochs": [
            {"epoch": int(e), "flags": f.split(",")} for e, f in flagged.itertuples(index=False)
        ],
        "thresholds": params.vices.model_dump(),
        # shares over fewer than vices.min_outputs probe texts are not judged (nor flagged)
        "too_few_probe_texts": bool(len(history) and history["too_few_outputs"].any()),
        "last_epoch": json.loads(history.iloc[-1].to_json()) if len(history) else {},
        HISTORY_KEY: history_digest(history),  # of one training with the adapter
    }
    contract = serving_contract(params.prompt_template, ludwig_config["base_model"])
    contract[HISTORY_KEY] = report[HISTORY_KEY]
    adapter = {"model": result.model, "serving": contract}  # the adapter with its contract
    return result.model, adapter, history, result.probe_outputs, report


def export_student_for_openvino(student_adapter: str, student_llm: Connection) -> str:
    """The adapter merged into the base and exported for the OpenVINO engine, with the weights
    the student is served with (``student_llm.weights``). When another backend serves the
    student (a GPU), nothing is merged or exported: a 7B merge in host memory would be paid
    for an artifact nobody serves; the dataset records why."""
    if student_llm.backend != "openvino":
        reason = (
            f"not exported: student_llm is served by the {student_llm.backend} backend "
            "(set backend: openvino and re-run the finetune pipeline to export it)"
        )
        logger.info("student_openvino %s", reason)
        return str(student.skipped_export(reason))
    return str(student.student_for_openvino(student_adapter, student_llm.weights))


def export_student_gguf(student_adapter: str) -> str:
    """The adapter as a GGUF LoRA, for llama.cpp (``--lora``) and Ollama (``ADAPTER``)."""
    return str(student.student_gguf(student_adapter))
