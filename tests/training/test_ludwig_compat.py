"""Each Ludwig 0.17.10 fix, exercised for real on a tiny model (fails without the fix)."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from product_descgen.training import ludwig_compat

pytestmark = pytest.mark.skipif(not ludwig_compat.affected(), reason="fixes target Ludwig 0.17.10")


def tiny_config(base_model: str, quantized: bool, max_new_tokens: int = 16) -> dict:
    config = {
        "model_type": "llm",
        "base_model": base_model,
        "prompt": {"template": "### Product\n{input_text}\n### Description\n"},
        "input_features": [{"name": "input_text", "type": "text"}],
        "output_features": [{"name": "target", "type": "text"}],
        "adapter": {"type": "lora", "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "trainer": {"type": "finetune", "epochs": 1, "batch_size": 4, "learning_rate": 1e-3},
        "generation": {"max_new_tokens": max_new_tokens},
        "backend": {"type": "local"},
    }
    if quantized:
        config["quantization"] = {
            "bits": 4,
            "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": "float32",
        }
    return config


def tiny_data(n: int = 8) -> pd.DataFrame:
    return pd.DataFrame(
        [{"input_text": f"Product: Mug {i}", "target": f"A red mug, number {i}."} for i in range(n)]
    )


@pytest.fixture(scope="module")
def trained_qlora(tiny_model_dir, tmp_path_factory):
    """Fix 1: 4-bit QLoRA training reaches the end (reloading the best checkpoint)."""
    from ludwig.api import LudwigModel

    ludwig_compat.apply()
    out = tmp_path_factory.mktemp("ludwig")
    model = LudwigModel(
        tiny_config(str(tiny_model_dir), quantized=True), logging_level=logging.ERROR
    )
    data = tiny_data()
    results = model.train(
        training_set=data, validation_set=data.head(4), output_directory=str(out),
        skip_save_processed_input=True,
    )  # fmt: skip
    return model, f"{results.output_directory}/model"


def test_frozen_state_keys_include_quant_state():
    keys = [
        "a.weight",
        "a.weight.absmax",
        "a.weight.quant_state.bitsandbytes__nf4",
        "b.lora_A.weight",
    ]
    assert ludwig_compat.frozen_state_keys(keys, {"a.weight"}) == keys[:3]


@pytest.mark.slow
def test_qlora_training_completes(trained_qlora):
    _, model_dir = trained_qlora
    saved = json.loads(Path(model_dir, "model_hyperparameters.json").read_text())
    assert saved["quantization"]["bits"] == 4
    assert "adapters" not in saved  # fix 2: no null block written


@pytest.mark.slow
def test_saved_model_loads_and_predicts_in_a_fresh_process(trained_qlora):
    """Fix 2 (and 4: inference through predict, on the CPU)."""
    _, model_dir = trained_qlora
    script = (
        "import logging, sys, pandas as pd\n"
        "from product_descgen.training import ludwig_compat\n"
        "ludwig_compat.apply()\n"
        "from ludwig.api import LudwigModel\n"
        "m = LudwigModel.load(sys.argv[1], logging_level=logging.ERROR)\n"
        "p, _ = m.predict(pd.DataFrame([{'input_text': 'Product: Mug 1'}]))\n"
        "print('COLUMNS', sorted(p.columns))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, model_dir],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "target_response" in done.stdout


def test_max_new_tokens_equal_to_the_default_is_kept(tiny_model_dir):
    """Fix 3: 32 (Ludwig's default value) set explicitly stays 32."""
    from ludwig.api import LudwigModel

    ludwig_compat.apply()
    config = tiny_config(str(tiny_model_dir), quantized=False, max_new_tokens=32)
    assert (
        LudwigModel(config, logging_level=logging.ERROR).config_obj.generation.max_new_tokens == 32
    )
    del config["generation"]  # unset: Ludwig's own default behaviour is untouched
    unset = LudwigModel(config, logging_level=logging.ERROR).config_obj.generation.max_new_tokens
    assert unset != 32


def test_base_model_path_mismatch_is_a_clear_error(tmp_path):
    """Fix 5: the saved model names its base model by absolute path."""
    (tmp_path / "model_hyperparameters.json").write_text(json.dumps({"base_model": "/models/a"}))
    ludwig_compat.check_base_model_path(tmp_path, "/models/a")
    with pytest.raises(ValueError, match="same models.student"):
        ludwig_compat.check_base_model_path(tmp_path, "/models/b")


class Killed(Exception):
    """Stands in for a killed process after an epoch's checkpoint."""


def train_killed_or_resumed(
    config: dict, out: Path, *, kill_after: int = 0, resume: bool = False, fixed: bool = True
) -> SimpleNamespace:
    """What a (resumed) training run trains with: the learning rate of each batch, and each
    epoch's last training loss."""
    from ludwig.api import LudwigModel
    from ludwig.callbacks import Callback

    class Record(Callback):
        def __init__(self) -> None:
            self.rates: list[float] = []
            self.losses: list[float] = []

        def on_batch_start(self, trainer, progress_tracker, save_path, **_) -> None:
            self.rates.append(progress_tracker.learning_rate)

        def on_epoch_end(self, trainer, progress_tracker, save_path, **_) -> None:
            self.losses.append(progress_tracker.train_metrics["combined"]["loss"][-1][-1])
            if progress_tracker.epoch == kill_after:
                raise Killed

    record = Record()
    fixes = ludwig_compat.fix_callbacks() if fixed else []
    model = LudwigModel(config, logging_level=logging.ERROR, callbacks=[record, *fixes])
    data = tiny_data()
    with contextlib.suppress(Killed):
        model.train(
            training_set=data, validation_set=data.head(4), output_directory=str(out),
            experiment_name="run", model_name="", skip_save_processed_input=True,
            model_resume_path=str(out / "run") if resume else None,
        )  # fmt: skip
    return SimpleNamespace(rates=record.rates, losses=record.losses)


@pytest.mark.slow
def test_a_resumed_run_trains_as_the_uninterrupted_run(tiny_model_dir, tmp_path):
    """Fixes 6 and 7: the resumed epoch trains at the rates the uninterrupted run had (its
    decay, and the plateau reduction made before the kill), with the dropout masks it drew, to
    the very same loss."""
    ludwig_compat.apply()
    config = tiny_config(str(tiny_model_dir), quantized=False)
    config["adapter"]["dropout"] = 0.3
    # A tiny random model never gets a validation sequence right: no improvement at the second
    # evaluation, so the learning rate is halved there, before the kill.
    plateau = {"reduce_on_plateau": 1, "reduce_on_plateau_patience": 0,
               "reduce_on_plateau_rate": 0.5, "reduce_eval_split": "validation",
               "reduce_eval_metric": "sequence_accuracy"}  # fmt: skip
    config["trainer"] |= {
        "epochs": 3, "batch_size": 2,
        "learning_rate_scheduler": {"decay": "linear", "warmup_fraction": 0.25, **plateau},
    }  # fmt: skip
    whole = train_killed_or_resumed(config, tmp_path / "whole")
    decayed = config["trainer"]["learning_rate"] * (12 - 8) / (12 - 3)  # step 8 of 12, 3 warm-up
    assert len(whole.rates) == 12 and whole.rates[4:8] != whole.rates[:4]  # a schedule that moves
    assert whole.rates[8] == pytest.approx(decayed * 0.5)  # ... and was halved after epoch 2
    for fixed in (False, True):
        out = tmp_path / f"fixed_{fixed}"
        killed = train_killed_or_resumed(config, out, kill_after=2)
        assert killed.rates == whole.rates[:8] and killed.losses == whole.losses[:2]
        resumed = train_killed_or_resumed(config, out, resume=True, fixed=fixed)
        if fixed:
            assert resumed.rates == pytest.approx(whole.rates[8:])
            assert resumed.losses == whole.losses[2:]  # bit for bit
        else:  # the schedule starts again, and the first epoch's dropout masks are drawn
            assert resumed.rates == pytest.approx(whole.rates[:4])
            assert resumed.losses != whole.losses[2:]


def test_a_resume_state_torn_by_a_kill_or_of_another_checkpoint_is_not_used(tmp_path, caplog):
    """A kill while the state was written left a truncated file, and the resume crashed on it
    (EOFError); a state from an earlier checkpoint would restore the wrong generators."""
    import torch

    [resumer] = ludwig_compat.fix_callbacks()
    resumer.save_path = str(tmp_path)
    saved = tmp_path / ludwig_compat.RESUME_STATE_FILE
    torch.save({"steps": 8, "plateau": None}, saved)
    assert resumer.saved_state(8) == {"steps": 8, "plateau": None}
    with caplog.at_level("WARNING"):
        assert resumer.saved_state(16) is None  # the checkpoint is step 16's
    assert "it was saved at step 8" in caplog.text
    saved.write_bytes(saved.read_bytes()[:20])  # torn
    with caplog.at_level("WARNING"):
        assert resumer.saved_state(8) is None
    assert "resuming without it" in caplog.text
