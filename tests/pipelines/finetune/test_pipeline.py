"""finetune end to end on the tiny model: QLoRA on the CPU, real datasets, adapter via peft."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from product_descgen.evaluation.stamp import HISTORY_KEY, history_digest
from product_descgen.models import model_fingerprint
from product_descgen.project_config import load_project_params
from tests.pipelines.helpers import run_pipeline, use_tiny_models


def write_distill_sets(project: Path, n_train: int = 12, n_val: int = 4) -> None:
    """The teacher's accepted examples, and the validation split's products: those ``n_val``
    and one more that the teacher's gate rejected (``v_rejected``)."""

    def frame(n: int, prefix: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "product_id": [f"{prefix}{i}" for i in range(n)],
                "category": "Kitchen",
                "title": [f"Mug {i}" for i in range(n)],
                "audience": "tea lovers",
                "input_text": [f"Product: Mug {i}\n- Color: Red" for i in range(n)],
                "target": [f"A red mug, number {i}, for tea lovers." for i in range(n)],
                "target_words": 8,
            }
        )

    model_input = project / "data" / "05_model_input"
    frame(n_train, "t").to_parquet(model_input / "distill_train.parquet")
    validation = frame(n_val, "v")
    validation.to_parquet(model_input / "distill_validation.parquet")
    rejected = validation.head(1).assign(product_id="v_rejected", title="Mug x")
    products = pd.concat([rejected, validation]).drop(columns=["target", "target_words"])
    products.to_parquet(model_input / "validation_examples.parquet")


def small_finetune(project: Path, epochs: int = 2) -> dict:
    params = load_project_params(root=project)["finetune"]
    trainer = {**params["ludwig"]["trainer"], "epochs": epochs, "batch_size": 4,
               "gradient_accumulation_steps": 1}  # fmt: skip
    ludwig = {**params["ludwig"], "trainer": trainer, "generation": {"max_new_tokens": 8}}
    return {**params, "ludwig": ludwig, "probe": {"size": 3, "generation": {"max_new_tokens": 8}}}


@pytest.mark.slow
def test_qlora_finetune_writes_model_adapter_history_and_vices(project_copy, tiny_model_dir):
    write_distill_sets(project_copy)
    run_pipeline(project_copy, tiny_model_dir, "finetune", finetune=small_finetune(project_copy))
    data = project_copy / "data"
    config = json.loads((data / "06_models" / "student_ludwig_config.json").read_text())
    assert config["quantization"]["bits"] == 4 and config["base_model"] == str(tiny_model_dir)
    [model_dir] = list((data / "06_models" / "student_model").iterdir())  # one version
    assert (model_dir / "student_model" / "model_hyperparameters.json").is_file()
    [adapter_dir] = list((data / "06_models" / "student_adapter").iterdir())
    adapter_dir = adapter_dir / "student_adapter"
    assert (adapter_dir / "adapter_config.json").is_file()
    contract = json.loads((adapter_dir / "serving.json").read_text())  # served as trained
    assert contract["stop"] == ["###"] and "{input_text}" in contract["prompt_template"]
    # the artifacts the engines serve, exported from that adapter
    [exported] = list((data / "06_models" / "student_openvino").iterdir())
    record = json.loads((exported / "student_openvino" / "product_descgen_export.json").read_text())
    assert record["weights"] == "int8"  # student_llm's weights
    assert record["adapter_fingerprint"] == model_fingerprint(adapter_dir)  # what it serves
    [gguf] = list((data / "06_models" / "student_gguf").iterdir())
    assert (gguf / "student_gguf" / "student-lora.gguf").stat().st_size > 0

    history = pd.read_parquet(data / "08_reporting" / "training_history.parquet")
    assert history["epoch"].tolist() == [1, 2]
    for column in ("train_loss", "validation_loss", "learning_rate", "tokens_per_s", "seconds"):
        assert history[column].notna().all(), column
    assert (history["trainable_share"] > 0).all() and (history["trainable_share"] < 0.01).all()
    probes = pd.read_parquet(data / "07_model_output" / "probe_outputs.parquet")
    assert len(probes) == 2 * 3
    # the validation split's products, the one the teacher's gate rejected included
    assert set(probes["product_id"]) == {"v_rejected", "v0", "v1"}
    report = json.loads((data / "08_reporting" / "vice_report.json").read_text())
    assert report["epochs"] == 2 and "thresholds" in report
    # adapter, history and vice report name one training (reporting refuses a mix)
    assert contract[HISTORY_KEY] == report[HISTORY_KEY] == history_digest(history)

    # The exported adapter loads with plain peft on the base model and generates.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer("### Product\nProduct: Mug 1\n### Description\n", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4


@pytest.mark.slow
def test_empty_training_set_fails_before_training(project_copy, tiny_model_dir):
    write_distill_sets(project_copy, n_train=0)
    with pytest.raises(ValueError, match="training set is empty"):
        run_pipeline(
            project_copy, tiny_model_dir, "finetune", finetune=small_finetune(project_copy)
        )
    assert not (project_copy / "data" / "06_models" / "student_training").exists()


@pytest.mark.slow
@pytest.mark.heavy
def test_killed_training_resumes_from_its_last_checkpoint(project_copy, tiny_model_dir):
    write_distill_sets(project_copy, n_train=32)
    params = small_finetune(project_copy, epochs=4)
    params["ludwig"]["trainer"]["batch_size"] = 2
    use_tiny_models(project_copy, tiny_model_dir)
    local = {"finetune": params}
    (project_copy / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(local))
    progress = project_copy / "data/06_models/student_training/run/model/training_progress.json"

    log = project_copy / "data/06_models/student_training/epoch_history.jsonl"

    def epochs_done() -> int:
        try:
            return json.loads(progress.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            return 0

    def logged() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    kedro = Path(sys.executable).with_name("kedro")
    proc = subprocess.Popen(
        [str(kedro), "run", "--pipeline", "finetune"], cwd=project_copy,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(entry["row"]["epoch"] >= 2 for entry in logged()):  # and so checkpointed
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"training ended before the kill: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    checkpointed = epochs_done()
    assert checkpointed >= 2, f"no readable checkpoint of epoch 2: {progress}"
    # as if killed while the checkpointed epoch was being probed (Ludwig checkpoints first);
    # on a busy machine the kill can come after a later epoch's checkpoint, before its probe
    # logged it: that state already (nothing of the killed run's probe to compare with)
    kept = [entry for entry in logged() if entry["row"]["epoch"] < checkpointed]
    unprobed = next((e for e in logged() if e["row"]["epoch"] == checkpointed), None)
    log.write_text("".join(json.dumps(entry) + "\n" for entry in kept))
    before = {entry["row"]["epoch"]: entry["row"] for entry in kept}
    assert 1 in before  # epoch 1's row is logged before epoch 2 is checkpointed

    write_distill_sets(project_copy, n_train=28)  # other data than the checkpoint was made of
    with pytest.raises(Exception, match="was made with other data"):
        run_pipeline(project_copy, tiny_model_dir, "finetune", finetune=params)
    write_distill_sets(project_copy, n_train=32)  # the same again: the checkpoint resumes
    run_pipeline(project_copy, tiny_model_dir, "finetune", finetune=params)
    history = pd.read_parquet(project_copy / "data/08_reporting/training_history.parquet")
    epochs = history["epoch"].tolist()
    assert epochs == [1, 2, 3, 4]  # the unprobed checkpointed epoch probed on resume
    assert history.set_index("epoch")["seconds"].isna().tolist() == [
        epoch == checkpointed for epoch in epochs
    ]  # its time died with the killed run
    assert (history["learning_rate"].diff().dropna() < 0).all()  # one decay, resumed in place
    # the epochs before the kill are reported as they were logged, not trained again
    resumed = history.set_index("epoch").loc[list(before), "seconds"]
    assert resumed.tolist() == [row["seconds"] for row in before.values()]
    probes = pd.read_parquet(project_copy / "data/07_model_output/probe_outputs.parquet")
    assert sorted(set(probes["epoch"])) == epochs
    # the checkpoint, probed on resume, describes what the killed run's probe described
    again = probes.loc[probes["epoch"] == checkpointed, "output"].tolist()
    assert any(again)
    if unprobed is None:  # said, not passed over silently
        warnings.warn("the kill came before the probe of the checkpointed epoch: its texts were "
                      "not compared with the resumed run's", stacklevel=1)  # fmt: skip
    else:
        assert again == [output["output"] for output in unprobed["outputs"]]
