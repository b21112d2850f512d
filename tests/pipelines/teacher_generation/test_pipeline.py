"""teacher_generation end to end: real session, real datasets, the tiny model as teacher."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipelines.helpers import override_connection, run_pipeline, use_tiny_models

SMALL_RUN = {
    "min_accepted_share": 0.0,  # the tiny random model writes nothing the gate accepts
    "max_examples": 12,
    "draft": {"max_new_tokens": 24},
    "refine": {"max_new_tokens": 24},
    "progress": False,
}


def teacher_params(project: Path, **overrides) -> dict:
    from product_descgen.project_config import load_project_params

    base = load_project_params(root=project)["teacher_generation"]
    merged = {**base, **overrides}
    for step in ("draft", "refine"):
        merged[step] = {**base[step], **overrides.get(step, {})}
    return merged


def small_batches(project: Path, batch_size: int = 2) -> None:
    """conf/local overrides the teacher connection: small batches, one thread."""
    connection = {"backend": "transformers", "batch_size": batch_size}
    override_connection(project, "catalog_llm.yml", "teacher_llm", connection, "teacher")


def calls(project: Path) -> pd.DataFrame:
    db = project / "data" / "07_model_output" / "teacher_calls.sqlite"
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT * FROM calls ORDER BY id", conn)


def calls_so_far(project: Path) -> int:
    """Calls recorded by a run in progress (0 while the store is still being created)."""
    try:
        return len(calls(project))
    except (pd.errors.DatabaseError, sqlite3.Error):
        return 0


@pytest.fixture
def prepared(project_copy, tiny_model_dir):
    run_pipeline(project_copy, tiny_model_dir, "data_prep")
    small_batches(project_copy)
    return project_copy


@pytest.mark.slow
def test_outputs_and_a_rerun_that_pays_nothing(prepared, tiny_model_dir):
    params = teacher_params(prepared, **SMALL_RUN)
    run_pipeline(prepared, tiny_model_dir, "teacher_generation", teacher_generation=params)
    data = prepared / "data"
    inputs = pd.read_parquet(data / "05_model_input" / "teacher_inputs.parquet")
    outputs = pd.read_parquet(data / "07_model_output" / "teacher_outputs.parquet")
    accepted = pd.read_parquet(data / "07_model_output" / "teacher_accepted.parquet")
    rejected = pd.read_parquet(data / "07_model_output" / "teacher_rejections.parquet")
    log = pd.read_parquet(data / "08_reporting" / "teacher_call_log.parquet")
    splits = [pd.read_parquet(data / "05_model_input" / f"distill_{s}.parquet")
              for s in ("train", "validation", "test")]  # fmt: skip

    assert len(inputs) == 12 and set(inputs["split"]) == {"train", "validation", "test"}
    assert outputs["draft"].notna().all() and outputs["refine"].notna().all()
    assert len(accepted) + len(rejected) == 12 == len(outputs)
    assert sum(len(s) for s in splits) == len(accepted)
    assert rejected["reasons"].str.len().gt(0).all()
    assert len(log) == 24 and set(log["step"]) == {"draft", "refine"}
    for column in ("prompt_tokens", "completion_tokens", "latency_s", "attempts"):
        assert (log[column] > 0).all(), column
    assert set(log["backend"]) == {"transformers"} and log["error"].isna().all()

    run_pipeline(prepared, tiny_model_dir, "teacher_generation", teacher_generation=params)
    assert len(calls(prepared)) == 24  # everything cached: no new calls

    # A changed refine prompt regenerates refinements only.
    prompt_file = prepared / "conf" / "base" / "prompts" / "teacher_base.yml"
    prompt_file.write_text(prompt_file.read_text().replace("An editor rewrites", "An editor edits"))
    run_pipeline(prepared, tiny_model_dir, "teacher_generation", teacher_generation=params)
    new = calls(prepared).iloc[24:]
    assert len(new) == 12 and set(new["step"]) == {"refine"}


@pytest.mark.slow
def test_killed_run_resumes_without_regenerating(prepared, tiny_model_dir):
    params = teacher_params(prepared, **{**SMALL_RUN, "max_examples": 24,
                                         "draft": {"max_new_tokens": 96}})  # fmt: skip
    # The subprocess reads its overrides from conf/local (local beats base per top-level key).
    use_tiny_models(prepared, tiny_model_dir)
    local = {"teacher_generation": params}
    (prepared / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(local))
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(kedro), "run", "--pipeline", "teacher_generation"]
    proc = subprocess.Popen(cmd, cwd=prepared, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if calls_so_far(prepared) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = calls(prepared)
    items = len(pd.read_parquet(prepared / "data" / "05_model_input" / "teacher_inputs.parquet"))
    assert 4 <= len(first) < 2 * items  # killed mid-run: some but not all calls made

    run_pipeline(prepared, tiny_model_dir, "teacher_generation", teacher_generation=params)
    log = calls(prepared)
    second = log.loc[log["run_id"] != first["run_id"].iloc[0]]
    assert len(log) == 2 * items and log["key"].is_unique  # once per item and step
    assert len(second) == 2 * items - len(first)
    assert not set(second["key"]) & set(first["key"])


def test_run_before_data_prep_names_the_pipeline_to_run_first(project_copy, tiny_model_dir):
    """Kedro alone fails at the first load, naming a parquet file, not what to run."""
    with pytest.raises(
        RuntimeError,
        match=r"train_examples \(written by data_prep\).*kedro run --pipeline data_prep$",
    ):
        run_pipeline(project_copy, tiny_model_dir, "teacher_generation")
    assert not (project_copy / "data" / "07_model_output" / "teacher_calls.sqlite").exists()
    import mlflow  # the run's record says it failed (MLflow's exit handler said FINISHED)

    client = mlflow.MlflowClient()  # the store the run used (MLflow keeps one per process)
    [experiment] = [e for e in client.search_experiments() if e.name == "product_descgen"]
    [latest] = client.search_runs(
        [experiment.experiment_id], order_by=["start_time DESC"], max_results=1
    )
    assert (latest.info.run_name, latest.info.status) == ("teacher_generation", "FAILED")
