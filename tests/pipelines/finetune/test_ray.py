"""finetune through Ludwig's Ray backend (conf/ray) on a real local Ray cluster: the same
datasets and callbacks as the local backend. Run as `kedro run --pipeline finetune --env ray`
in a subprocess, bounded in time; its Ray processes go with it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipelines.finetune.test_pipeline import write_distill_sets
from tests.pipelines.helpers import override_connection, use_tiny_models


@pytest.mark.slow
@pytest.mark.heavy
def test_finetune_on_a_local_ray_cluster(project_copy, tiny_model_dir):
    write_distill_sets(project_copy, n_train=12, n_val=4)
    use_tiny_models(project_copy, tiny_model_dir, env="ray")
    params_file = project_copy / "conf" / "ray" / "parameters_finetune.yml"
    params = yaml.safe_load(params_file.read_text())
    finetune = params["finetune"]
    finetune["probe"] = {"size": 3, "generation": {"max_new_tokens": 8}}
    finetune["ludwig"] |= {
        "trainer": {"epochs": 2, "batch_size": 4},
        "generation": {"max_new_tokens": 8},
    }
    params_file.write_text(yaml.safe_dump(params))
    # the student served in-process: no OpenVINO export after training (not tested here)
    override_connection(
        project_copy, "catalog_llm.yml", "student_llm", {"backend": "transformers"}, "student",
        env="ray",
    )  # fmt: skip
    kedro = Path(sys.executable).with_name("kedro")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a Ray of its own
    home = project_copy / "home"  # Ray's token and ~/ray_results stay in the test's folder
    home.mkdir()
    # Ray's sessions (logs, sockets) in a folder of the test's, not /tmp/ray; a short path:
    # its socket paths must fit in 107 characters
    ray_tmp = tempfile.mkdtemp(prefix="ray-")
    proc = subprocess.Popen(
        [str(kedro), "run", "--pipeline", "finetune", "--env", "ray"], cwd=project_copy,
        env={**env, "OMP_NUM_THREADS": "1", "HOME": str(home), "RAY_TMPDIR": ray_tmp},
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        log, _ = proc.communicate(timeout=480)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and the Ray processes it started
            proc.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    (project_copy / "ray_run.log").write_text(log)
    assert proc.returncode == 0, log[-4000:]
    assert "Ray: starting a local cluster" in log

    data = project_copy / "data"
    config = json.loads((data / "06_models" / "student_ludwig_config.json").read_text())
    assert config["backend"]["type"] == "ray"
    [adapter] = list((data / "06_models" / "student_adapter").iterdir())
    assert (adapter / "student_adapter" / "adapter_config.json").is_file()
    history = pd.read_parquet(data / "08_reporting" / "training_history.parquet")
    assert history["epoch"].tolist() == [1, 2]  # recorded in the Ray worker, sent back
    assert history["validation_loss"].notna().all() and history["train_loss"].notna().all()
    probes = pd.read_parquet(data / "07_model_output" / "probe_outputs.parquet")
    assert len(probes) == 2 * 3
    report = json.loads((data / "08_reporting" / "vice_report.json").read_text())
    assert report["epochs"] == 2
