import json
import logging

import numpy as np
import pandas as pd
import pytest

from product_descgen.llm.types import GenerationSettings
from product_descgen.training.resume import (
    FINGERPRINT_FILE,
    log_epoch,
    logged_epochs,
    prepare_run,
    probe_fingerprint,
    training_fingerprint,
)
from product_descgen.training.vices import ViceThresholds


def test_the_fingerprint_changes_with_the_data_or_the_config_only():
    frame = pd.DataFrame({"input_text": ["a", "b"], "target": ["x", "y"]})
    base = training_fingerprint({"epochs": 2}, frame, frame.head(1))
    assert training_fingerprint({"epochs": 2}, frame.copy(), frame.head(1)) == base
    other_data = training_fingerprint({"epochs": 2}, frame.assign(target=["x", "z"]), frame)
    assert other_data["data"] != base["data"] and other_data["config"] == base["config"]
    other_config = training_fingerprint({"epochs": 3}, frame, frame.head(1))
    assert other_config["config"] != base["config"] and other_config["data"] == base["data"]


def test_the_probe_fingerprint_follows_prompts_decoding_and_thresholds():
    settings, vices = GenerationSettings(max_new_tokens=8), ViceThresholds()
    base = probe_fingerprint(["a", "b"], settings, vices)
    assert probe_fingerprint(["a", "b"], GenerationSettings(max_new_tokens=8), vices) == base
    assert probe_fingerprint(["a"], settings, vices) != base
    assert probe_fingerprint(["a", "b"], GenerationSettings(max_new_tokens=9), vices) != base
    other_vices = ViceThresholds(max_opening_share=0.9)
    assert probe_fingerprint(["a", "b"], settings, other_vices) != base


def test_the_epoch_log_keeps_the_epochs_a_resume_starts_after(tmp_path):
    log = str(tmp_path / "work" / "epoch_history.jsonl")
    assert logged_epochs(log, 0) == ([], [])  # a new run: an empty log
    for epoch in (1, 2, 3):
        row = {"epoch": epoch, "train_loss": 1.0 / epoch, "share": np.float64(0.5), "flags": ""}
        log_epoch(log, row, [{"epoch": epoch, "product_id": "p1", "output": f"text {epoch}"}])
    rows, outputs = logged_epochs(log, 2)  # the checkpoint holds two: the third is trained again
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["train_loss"] == 0.5
    assert [o["output"] for o in outputs] == ["text 1", "text 2"]
    assert logged_epochs(log, 5)[0] == rows  # the third epoch's line is gone from the file
    assert logged_epochs(log, 0) == ([], [])


def killed_run(work_dir, epochs: int, marker: dict[str, str]) -> None:
    """What a run killed after ``epochs`` checkpointed epochs leaves in ``work_dir``."""
    model = work_dir / "run" / "model"
    (model / "training_checkpoints").mkdir(parents=True)
    (model / "training_checkpoints" / "latest.ckpt").write_text("weights")
    (model / "training_progress.json").write_text(json.dumps({"epoch": epochs}))
    (work_dir / FINGERPRINT_FILE).write_text(json.dumps(marker))


def test_a_killed_run_resumes_with_its_history_unless_the_probe_changed(tmp_path, caplog):
    fingerprint = {"config": "c", "data": "d"}
    assert prepare_run(tmp_path / "new", fingerprint, "p", "fail") == (None, 0)
    saved = json.loads((tmp_path / "new" / FINGERPRINT_FILE).read_text())
    assert saved == {**fingerprint, "probe": "p"}

    killed_run(tmp_path / "same", 3, {**fingerprint, "probe": "p"})
    assert prepare_run(tmp_path / "same", fingerprint, "p", "fail") == (
        tmp_path / "same" / "run",
        3,
    )
    killed_run(tmp_path / "probe", 3, {**fingerprint, "probe": "p"})
    with caplog.at_level(logging.WARNING):
        resume, kept = prepare_run(tmp_path / "probe", fingerprint, "other", "fail")
    assert (resume, kept) == (tmp_path / "probe" / "run", 0)  # the checkpoint stays
    assert "The probe is not the one" in caplog.text
    assert json.loads((tmp_path / "probe" / FINGERPRINT_FILE).read_text())["probe"] == "other"


def test_a_checkpoint_of_other_data_fails_or_is_discarded(tmp_path):
    fingerprint = {"config": "c", "data": "d"}
    killed_run(tmp_path / "a", 2, {"config": "c", "data": "old", "probe": "p"})
    with pytest.raises(ValueError, match="was made with other data than this run's"):
        prepare_run(tmp_path / "a", fingerprint, "p", "fail")
    assert (tmp_path / "a" / "run").is_dir()  # refused: nothing removed
    assert prepare_run(tmp_path / "a", fingerprint, "p", "restart") == (None, 0)
    assert not (tmp_path / "a" / "run").exists()

    killed_run(tmp_path / "done", 2, {**fingerprint, "probe": "p"})
    (tmp_path / "done" / "run" / "training_statistics.json").write_text("{}")  # it finished
    assert prepare_run(tmp_path / "done", fingerprint, "p", "fail") == (None, 0)
    assert not (tmp_path / "done" / "run").exists()


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path, caplog):
    """Its run folder exists, with no training progress or latest checkpoint to resume."""
    fingerprint = {"config": "c", "data": "d"}
    killed_run(tmp_path / "early", 0, {**fingerprint, "probe": "p"})
    (tmp_path / "early" / "run" / "model" / "training_checkpoints" / "latest.ckpt").unlink()
    with caplog.at_level(logging.INFO):
        assert prepare_run(tmp_path / "early", fingerprint, "p", "fail") == (None, 0)
    assert "Resuming" not in caplog.text


def test_a_run_killed_while_writing_its_training_progress_starts_again(tmp_path, caplog):
    """Ludwig writes training_progress.json in place: a kill then leaves it cut short, and
    Ludwig failed to resume from it (a JSON error, every re-run)."""
    fingerprint = {"config": "c", "data": "d"}
    killed_run(tmp_path / "cut", 2, {**fingerprint, "probe": "p"})
    progress = tmp_path / "cut" / "run" / "model" / "training_progress.json"
    progress.write_text(progress.read_text()[:10])
    with caplog.at_level(logging.WARNING):
        assert prepare_run(tmp_path / "cut", fingerprint, "p", "fail") == (None, 0)
    assert "unreadable (the run stopped while writing it)" in caplog.text
    assert not (tmp_path / "cut" / "run").exists()
