"""The evaluation's speed-test jobs, built from the project's catalog and parameters as the
speed nodes build them (``serve_student``, ``teacher_speed_job``, ``student_speed_job``), for
the benchmarks that serve them under other settings."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402

from product_descgen.evaluation.config import EvaluationParams  # noqa: E402
from product_descgen.evaluation.speed import SpeedJob, gate_outputs  # noqa: E402
from product_descgen.pipelines.evaluation import nodes  # noqa: E402
from product_descgen.runtime import RuntimeParams, set_threads  # noqa: E402
from product_descgen.teacher.config import TeacherParams  # noqa: E402
from product_descgen.training.config import FinetuneParams  # noqa: E402


def load_speed_jobs(
    sample_size: int | None = None, split: str = "test"
) -> tuple[EvaluationParams, SpeedJob, SpeedJob]:
    """The evaluation parameters and the teacher's and student's speed-test jobs (on
    ``sample_size`` products of ``split`` when given, else the configured test sample)."""
    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT) as session:
        catalog = session.load_context().catalog
        params = catalog.load("parameters")
        names = (f"{split}_examples", "student_adapter", "student_openvino", "teacher_prompts",
                 "speed_teacher_llm", "student_llm")  # fmt: skip
        examples, adapter, exported, prompts, teacher_llm, student_llm = map(catalog.load, names)
        set_threads(RuntimeParams.model_validate(params.get("runtime", {})).resolved_threads())
    evaluation = EvaluationParams.model_validate(params["evaluation"])
    if sample_size is not None:
        speed = evaluation.speed.model_copy(update={"sample_size": sample_size})
        evaluation = evaluation.model_copy(update={"speed": speed})
    teacher = TeacherParams.model_validate(params["teacher_generation"])
    finetune = FinetuneParams.model_validate(params["finetune"])
    served = nodes.serve_student(adapter, exported, student_llm, finetune, evaluation)
    teacher_job = nodes.teacher_speed_job(examples, prompts, teacher_llm, teacher, evaluation)
    student_job = nodes.student_speed_job(examples, served, teacher, evaluation)
    return evaluation, teacher_job, student_job


def gate_texts(results: list[dict], items: list[dict]) -> pd.DataFrame:
    """The speed results' delivered texts through the teacher's quality gate, as the speed node
    gates them (each result gets its ``gate_pass_rate``), against ``items`` as the catalogue."""
    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT) as session:
        params = session.load_context().catalog.load("parameters")
    teacher = TeacherParams.model_validate(params["teacher_generation"])
    return gate_outputs(results, pd.DataFrame(items), teacher.gate, teacher.embedding_model)


def newest_student_adapter() -> str:
    """The trained student's adapter directory (the catalog's latest ``student_adapter``)."""
    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT) as session:
        return session.load_context().catalog.load("student_adapter")
