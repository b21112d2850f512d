import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

from product_descgen.evaluation.config import EvaluationParams
from product_descgen.llm.types import GenerationSettings
from product_descgen.project_config import load_project_params
from product_descgen.training.config import FinetuneParams
from product_descgen.training.resume import HISTORY_FILE
from product_descgen.training.train import (
    ctrl_c_stops_training,
    epoch_losses,
    generate_probe,
    make_recorder,
    train_student,
    with_epoch_losses,
)


def test_losses_missing_at_epoch_end_are_filled_from_ludwig_statistics():
    history = pd.DataFrame(
        {"epoch": [1, 2], "train_loss": [None, 0.5], "validation_loss": [None, None]}
    )
    stats = SimpleNamespace(
        training={"combined": {"loss": [(1, 3, 1.2), (1, 6, 1.0), (2, 9, 0.4)]}},
        validation={"combined": {"loss": [(1, 6, 1.1), (2, 9, 0.7)]}},
    )
    assert epoch_losses(stats.training, 2) == {1: 1.0, 2: 0.4}
    assert epoch_losses({"combined": {"loss": [0.9, 0.3]}}, 2) == {1: 0.9, 2: 0.3}
    assert epoch_losses({"combined": {"loss": [0.9, 0.3, 0.2]}}, 2) == {}  # not one per epoch
    out = with_epoch_losses(history, stats)
    assert out["train_loss"].tolist() == [1.0, 0.5]  # a value seen at epoch end is kept
    assert out["validation_loss"].tolist() == [1.1, 0.7]
    assert history["train_loss"].isna().sum() == 1  # input not mutated


class FakePeftModel:
    """Reports a device no tensor is on by default and records what ``generate`` gets; it
    generates ``new`` after the prompt (two 7s by default)."""

    def __init__(self, new: list[int] | None = None) -> None:
        self.device = torch.device("meta")
        self.training = True
        self.calls: list[dict] = []
        self.new = new or [7, 7]

    def eval(self):
        self.training = False

    def train(self):
        self.training = True

    def get_nb_trainable_parameters(self):
        return 1, 100

    def generate(self, **kwargs):
        self.calls.append(kwargs)
        rows, width = kwargs["input_ids"].shape
        return torch.cat([torch.zeros(rows, width, dtype=torch.long),
                          torch.tensor([self.new] * rows)], dim=1)  # fmt: skip


def test_probe_inputs_go_to_the_models_device_and_training_mode_is_restored(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = FakePeftModel()
    settings = GenerationSettings(max_new_tokens=2)
    texts = generate_probe(model, tokenizer, ["Product: mug", "Product: a longer cup"], settings)
    assert len(texts) == 2 and model.training
    [kwargs] = model.calls
    tensors = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
    assert {"input_ids", "attention_mask"} <= kwargs.keys()
    assert all(t.device == model.device for t in tensors)


def test_the_probe_decodes_as_the_student_is_served(tiny_model_dir):
    """The served student's penalties and its contract's stop strings: a vice the probe flags
    is one the served text has (not a continuation past ``###`` that serving cuts off)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = FakePeftModel(tokenizer("A red mug. ### Product x", add_special_tokens=False).input_ids)
    served = GenerationSettings(max_new_tokens=40, repetition_penalty=1.1, stop=["###"])
    assert generate_probe(model, tokenizer, ["Product: mug"], served) == ["A red mug."]
    [kwargs] = model.calls
    assert kwargs["max_new_tokens"] == 40 and kwargs["repetition_penalty"] == 1.1
    assert kwargs["stop_strings"] == ["###"] and kwargs["do_sample"] is False
    for env in (None, "gpu"):  # one home (globals.student_generation) in each environment
        params = load_project_params(env)
        probe = FinetuneParams.model_validate(params["finetune"]).probe.generation
        assert probe == EvaluationParams.model_validate(params["evaluation"]).student_generation


def test_an_epoch_checkpointed_before_its_probe_ended_is_probed_on_resume(tiny_model_dir, tmp_path):
    """Ludwig checkpoints an epoch before the recorder probes it. A run killed in between
    resumes from that checkpoint: the recorder probes it before training on (or, when no epoch
    is left to train, as training ends), so every epoch is reported."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    params = FinetuneParams.model_validate(
        {**load_project_params()["finetune"], "work_dir": str(tmp_path)}
    ).model_copy(update={"probe": FinetuneParams().probe.model_copy(update={"size": 2})})
    probe = pd.DataFrame({"product_id": ["p1", "p2"], "input_text": ["a mug", "a cup"]})
    model = FakePeftModel()
    trainer = SimpleNamespace(model=SimpleNamespace(model=model))

    def tracker(epoch: int) -> SimpleNamespace:
        loss = {"combined": {"loss": [(epoch, 3 * epoch, 3.0 - epoch)]}}
        return SimpleNamespace(epoch=epoch, train_metrics=loss, validation_metrics=loss,
                               learning_rate=1e-4 * (4 - epoch))  # fmt: skip

    def recorder():
        return make_recorder(probe, ["A red mug."], params, tokenizer, tokens_per_epoch=100)

    first = recorder()  # epoch 1 recorded; killed after epoch 2's checkpoint, before its row
    first.on_epoch_start(trainer, tracker(0), "")
    first.on_epoch_end(trainer, tracker(1), "")
    assert len(model.calls) == 1

    resumed = recorder()
    resumed.restore(2)
    assert [r["epoch"] for r in resumed.rows] == [1] and len(model.calls) == 1
    resumed.on_epoch_start(trainer, tracker(2), "")  # the checkpoint: the model after epoch 2
    resumed.on_epoch_end(trainer, tracker(3), "")
    resumed.on_trainer_train_teardown(trainer, tracker(3), "", is_coordinator=True)
    assert [r["epoch"] for r in resumed.rows] == [1, 2, 3] and len(model.calls) == 3
    row = resumed.rows[1]
    assert row["seconds"] is None and row["tokens_per_s"] is None  # its time died with the run
    assert row["validation_loss"] == 1.0 and row["learning_rate"] == pytest.approx(2e-4)
    assert [o["epoch"] for o in resumed.outputs] == [1, 1, 2, 2, 3, 3]
    log = (tmp_path / HISTORY_FILE).read_text().splitlines()
    assert [json.loads(line)["row"]["epoch"] for line in log] == [1, 2, 3]

    ended = recorder()  # killed likewise after the last epoch's checkpoint: nothing to train
    ended.restore(3)
    log = (tmp_path / HISTORY_FILE).read_text().splitlines()
    (tmp_path / HISTORY_FILE).write_text("".join(line + "\n" for line in log[:2]))
    ended.restore(3)
    ended.on_trainer_train_teardown(trainer, tracker(3), "", is_coordinator=True)
    assert [r["epoch"] for r in ended.rows] == [1, 2, 3] and len(model.calls) == 4

    logged = recorder()  # every checkpointed epoch was logged: nothing is probed again
    logged.restore(3)
    logged.on_epoch_start(trainer, tracker(3), "")
    assert [r["epoch"] for r in logged.rows] == [1, 2, 3] and len(model.calls) == 4


def test_probe_products_without_rows_or_prompt_fields_are_clear_errors():
    params = FinetuneParams.model_validate(load_project_params()["finetune"])
    rows = pd.DataFrame({"input_text": ["a mug"], "target": ["A red mug."]})
    with pytest.raises(ValueError, match="no products to probe"):
        train_student({}, rows, rows, rows.head(0), params)
    with pytest.raises(ValueError, match=r"lack the prompt's fields \['input_text'\]"):
        train_student({}, rows, rows, rows[["target"]], params)


def test_ctrl_c_during_training_stops_it_instead_of_ending_it_as_complete():
    """Ludwig's SIGINT handler ended training after one more step as if it were complete, and
    the pipeline saved that part-trained student; Ctrl-C must interrupt, as a kill would."""
    import signal

    from ludwig.trainers.trainer import Trainer

    before = signal.getsignal(signal.SIGINT)
    trainer = SimpleNamespace(original_sigint_handler=signal.default_int_handler)
    signal.signal(signal.SIGINT, Trainer.set_steps_to_1_or_quit)  # what Ludwig's setup does
    try:
        callback = ctrl_c_stops_training()
        callback.on_trainer_train_setup(trainer, "save/path", True)  # as Ludwig calls it
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
