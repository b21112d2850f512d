"""The notebooks run top to bottom against a real (small) run, so they cannot rot."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from product_descgen.prep.quarantine import quarantine_frame
from tests.conftest import PROJECT_ROOT
from tests.pipelines.evaluation.fixtures import (
    serve_student_in_float32,
    write_adapter,
    write_model_exports,
    write_student_openvino,
    write_test_sets,
    write_upstream_reports,
)
from tests.pipelines.evaluation.test_pipeline import small_evaluation, small_teacher
from tests.pipelines.helpers import run_pipeline


def assert_tracked() -> None:
    """kedro-mlflow recorded the runs: parameters, the headline metrics, the report.

    The client follows the tracking URI the runs used. (The SQLite URI is relative to the
    working directory and MLflow caches one store per URI string, so in a process that has
    run several projects, like this test session, runs go to the first project's file.)
    """
    import mlflow

    client = mlflow.MlflowClient()
    [experiment] = [e for e in client.search_experiments() if e.name == "product_descgen"]
    latest = {}
    for run in client.search_runs([experiment.experiment_id], order_by=["start_time DESC"]):
        latest.setdefault(run.info.run_name, run)
    assert {"evaluation", "reporting"} <= set(latest)
    reporting = latest["reporting"]
    assert "key_metrics.speed.throughput_ratio" in reporting.data.metrics
    assert any(k.startswith("reporting") for k in reporting.data.params)
    artifacts = [a.path for a in client.list_artifacts(reporting.info.run_id)]
    assert "report.html" in artifacts


NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_a_small_run(
    path, project_copy, tiny_model_dir, tiny_openvino_dir, tiny_openvino_int8_dir
):
    write_test_sets(project_copy, n=4)
    write_adapter(project_copy, tiny_model_dir)
    write_student_openvino(project_copy, tiny_openvino_dir)
    serve_student_in_float32(project_copy)
    write_model_exports(
        project_copy, tiny_model_dir, fp32=tiny_openvino_dir, int8=tiny_openvino_int8_dir
    )
    write_upstream_reports(project_copy)
    quarantine_frame([]).to_parquet(project_copy / "data/02_intermediate/quarantine.parquet")
    run_pipeline(
        project_copy, tiny_model_dir, "evaluation",
        evaluation=small_evaluation(project_copy), teacher_generation=small_teacher(project_copy),
    )  # fmt: skip
    run_pipeline(project_copy, tiny_model_dir, "reporting")
    assert_tracked()
    # the kernel is a process of its own: the store's URI relative, as the project ships it
    shutil.copy(PROJECT_ROOT / "conf" / "base" / "mlflow.yml", project_copy / "conf" / "base")
    (project_copy / "notebooks").mkdir(exist_ok=True)
    copy = shutil.copy(path, project_copy / "notebooks" / path.name)
    notebook = nbformat.read(copy, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(project_copy / "notebooks")}},
    ).execute()  # fmt: skip
    errors = [
        out for cell in notebook.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "error"
    ]  # fmt: skip
    assert not errors
    assert not (project_copy / "notebooks" / "data").exists()  # one MLflow store, the project's
    text = "".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )  # fmt: skip
    assert "student" in text and "throughput" in text.lower()
