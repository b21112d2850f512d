"""Every shipped environment loads as `kedro run --env ENV` sees it, and its typed blocks
validate; an environment's parameters merge into base's key by key."""

from __future__ import annotations

import pytest

from product_descgen.evaluation.config import DescribeParams, EvaluationParams
from product_descgen.models import ModelsParams
from product_descgen.pipelines.reporting.nodes import ReportingParams
from product_descgen.prep.config import DataPrepParams
from product_descgen.project_config import load_project_config, load_project_params
from product_descgen.runtime import RuntimeParams
from product_descgen.teacher.config import TeacherParams
from product_descgen.training.config import FinetuneParams

BLOCKS = {
    "models": ModelsParams, "runtime": RuntimeParams, "data_prep": DataPrepParams,
    "teacher_generation": TeacherParams, "finetune": FinetuneParams,
    "evaluation": EvaluationParams, "describe": DescribeParams, "reporting": ReportingParams,
}  # fmt: skip


@pytest.mark.parametrize("env", [None, "flipkart", "gpu"])
def test_every_environment_validates(env):
    params = load_project_params(env)
    for name, model in BLOCKS.items():
        model.model_validate(params[name])
    assert {"teacher_llm", "student_llm", "judge_llm"} <= load_project_config("catalog", env).keys()


def test_an_environment_states_only_what_it_changes():
    base, gpu = load_project_params(), load_project_params("gpu")
    speed = EvaluationParams.model_validate(gpu["evaluation"]).speed
    assert speed.teacher.backend == "transformers" and speed.teacher.quantization == "int8"
    assert gpu["evaluation"]["student_generation"] == base["evaluation"]["student_generation"]
    assert speed.sample_size == base["evaluation"]["speed"]["sample_size"]
    assert all(m.gpu_memory_gb for m in speed.machines)  # a list is replaced whole
