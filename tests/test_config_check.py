"""Keys Kedro does not validate (top-level parameter blocks, globals) fail the run at start-up."""

from __future__ import annotations

import pytest

from product_descgen.config_check import check_config, config_problems
from product_descgen.project_config import PROJECT_ROOT, load_project_config

PARAMS = {"data_prep", "teacher_generation", "runtime"}
GLOBALS = {"data_root", "models", "quality_gate"}
MODELS = {"teacher": {"gguf_package": "a"}, "student": {"gguf_package": "b"}}


def test_a_misspelt_parameter_block_is_named_with_the_likely_one():
    [problem] = config_problems({"teacher_generaton": {}}, {}, PARAMS, GLOBALS)
    assert "unknown block 'teacher_generaton' (did you mean 'teacher_generation'?)" in problem


def test_a_global_close_to_a_declared_one_fails_and_your_own_globals_do_not():
    globals_ = {"data_rot": "data/x", "my_bucket": "s3://catalogue", "models": MODELS}
    assert config_problems({}, globals_, PARAMS, GLOBALS) == [
        "globals: unknown key 'data_rot' (did you mean 'data_root'?)"
    ]


def test_a_misspelt_model_role_or_source_is_named():
    models = {**MODELS, "teachr": {"path": "/m"}}
    assert config_problems({}, {"models": models}, PARAMS, GLOBALS) == [
        "globals: models.teachr: Extra inputs are not permitted (did you mean 'teacher'?)"
    ]
    models = {**MODELS, "teacher": {"pth": "/m"}}
    problems = config_problems({}, {"models": models}, PARAMS, GLOBALS)
    assert "globals: models.teacher.pth: Extra inputs are not permitted (did you mean 'path'?)" in (
        problems
    )


@pytest.mark.parametrize("env", [None, "flipkart", "gpu", "cluster", "ray"])
def test_every_shipped_environment_passes(env):
    check_config(
        load_project_config("parameters", env),
        load_project_config("globals", env),
        PROJECT_ROOT / "conf" / "base",
        env or "local",
    )
