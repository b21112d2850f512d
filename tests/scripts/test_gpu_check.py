"""scripts/gpu_check.py's generation step, on the CPU with the tiny model: it runs the
pipelines' own student nodes, so a change to them shows here rather than on a lent GPU."""

from __future__ import annotations

import importlib.util

import pytest

from product_descgen.project_config import PROJECT_ROOT, load_project_params
from product_descgen.training.config import FinetuneParams
from tests.pipelines.evaluation.fixtures import write_adapter, write_test_sets


def gpu_check():
    spec = importlib.util.spec_from_file_location(
        "gpu_check", PROJECT_ROOT / "scripts/gpu_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_checks_generation_describes_and_evaluates_every_row(project_copy, tiny_model_dir):
    items = write_test_sets(project_copy, n=4)
    params = load_project_params(root=project_copy)
    params["evaluation"]["student_generation"]["max_new_tokens"] = 8
    trained = {
        "params": params,
        "finetune": FinetuneParams.model_validate(params["finetune"]),
        "adapter": str(write_adapter(project_copy, tiny_model_dir)),
    }
    figures = gpu_check().generate(trained, tiny_model_dir, None, items)
    assert figures["serving"] == "transformers nf4 float32"  # the CPU stand-in for conf/gpu's
    assert figures["rows"] == figures["rows_with_text"] == 4 and figures["errors"] == []
    assert figures["described_rows"] == figures["evaluation_rows_with_text"] == 4
