"""Train the student with Ludwig and record what each epoch shows.

Per epoch: training and validation loss, learning rate, tokens/s, time, and the vice
detector's measures on a fixed probe set that the model describes after the epoch: the
validation split's products, whether or not the teacher's text for them passed the gate (the
probe needs no target), so that a strict gate does not leave it too few texts to judge.
A killed run resumes from its last checkpoint: training writes into ``finetune.work_dir`` and a
later call with the same ``work_dir`` passes it to Ludwig as ``model_resume_path``, with the
logged history of the epochs before it (:mod:`product_descgen.training.resume`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from product_descgen.llm.hf_backend import generation_kwargs
from product_descgen.llm.types import GenerationSettings, cut_at_stop
from product_descgen.training import bnb_compat, ludwig_compat
from product_descgen.training.config import FinetuneParams, RayParams, template_fields
from product_descgen.training.contract import stop_strings
from product_descgen.training.resume import (
    HISTORY_FILE,
    RUN_NAME,
    log_epoch,
    logged_epochs,
    prepare_run,
    probe_fingerprint,
    training_fingerprint,
)
from product_descgen.training.vices import detect_vices

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: Any  # ludwig.api.LudwigModel
    history: pd.DataFrame
    probe_outputs: pd.DataFrame


def trainable_share(peft_model: Any) -> float:
    """Trainable parameters / all parameters (peft counts 4-bit weights unpacked)."""
    trainable, total = peft_model.get_nb_trainable_parameters()
    return trainable / total


def generate_probe(
    peft_model: Any, tokenizer: Any, prompts: list[str], settings: GenerationSettings
) -> list[str]:
    """The probe prompts' descriptions from the model as it is now, on its device, decoded
    with ``settings`` (as served: penalties, and the text cut at the stop strings)."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(peft_model.device)
    was_training = peft_model.training
    peft_model.eval()
    if settings.temperature > 0:
        torch.manual_seed(settings.seed)
    with torch.inference_mode():
        out = peft_model.generate(**batch, **generation_kwargs(settings, tokenizer))
    if was_training:
        peft_model.train()
    new = out[:, batch["input_ids"].shape[1] :]
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    return [cut_at_stop(text, settings.stop)[0].strip() for text in texts]


def _last(metrics: dict[str, Any], name: str = "loss") -> float | None:
    values = metrics.get("combined", {}).get(name, [])
    return float(values[-1][-1]) if values else None


def make_recorder(
    probe: pd.DataFrame,
    references: list[str],
    params: FinetuneParams,
    tokenizer: Any,
    tokens_per_epoch: int,
) -> Any:
    """A Ludwig callback that appends one history row per epoch; the probe texts' length is
    compared with ``references`` (the training targets: what the student learns to write)."""
    from ludwig.callbacks import Callback

    prompts = [params.prompt_template.format(**row) for row in probe.to_dict(orient="records")]
    settings = params.probe.generation.with_stop(stop_strings(params.prompt_template))

    class EpochRecorder(Callback):
        def __init__(self) -> None:
            self.rows: list[dict[str, Any]] = []
            self.outputs: list[dict[str, Any]] = []
            # a plain string: Ray copies the recorder to its worker and its state back
            self.log = str(Path(params.work_dir) / HISTORY_FILE)
            self.probe_key = probe_fingerprint(prompts, settings, params.vices)
            self.unprobed = 0  # a checkpointed epoch without a logged row (restore)
            self._start = time.perf_counter()

        def restore(self, epochs: int) -> None:
            """Start from the logged history of the first ``epochs`` epochs (a resumed run's).
            A run killed while its last checkpointed epoch was being probed lacks that epoch's
            row: the checkpoint holds the model as the epoch left it, so it is probed on resume."""
            self.rows, self.outputs = logged_epochs(self.log, epochs)
            logged = {row["epoch"] for row in self.rows}
            self.unprobed = epochs if epochs and epochs not in logged else 0

        def on_epoch_start(
            self, trainer: Any, progress_tracker: Any, save_path: str, **_: Any
        ) -> None:
            self.probe_unprobed(trainer, progress_tracker)
            self._start = time.perf_counter()

        def on_trainer_train_teardown(
            self,
            trainer: Any,
            progress_tracker: Any,
            save_path: str,
            is_coordinator: bool,
            **_: Any,
        ) -> None:
            if is_coordinator:  # a run resumed after its last epoch trains none
                self.probe_unprobed(trainer, progress_tracker)

        def on_epoch_end(
            self, trainer: Any, progress_tracker: Any, save_path: str, **_: Any
        ) -> None:
            self.record(trainer, progress_tracker, time.perf_counter() - self._start)

        def probe_unprobed(self, trainer: Any, progress_tracker: Any) -> None:
            if self.unprobed and int(progress_tracker.epoch) == self.unprobed:
                logger.info("Probing epoch %d, checkpointed before its probe ended", self.unprobed)
                self.record(trainer, progress_tracker, None)  # its time died with the run
            self.unprobed = 0

        def record(self, trainer: Any, progress_tracker: Any, seconds: float | None) -> None:
            """The epoch that ``progress_tracker`` has finished: its row, and the probe's texts
            from the model as it is now."""
            peft_model = trainer.model.model
            texts = generate_probe(peft_model, tokenizer, prompts, settings)
            vices = detect_vices(
                texts, probe[params.input_column].tolist(), references, params.vices
            )
            epoch = int(progress_tracker.epoch)
            self.rows.append(
                {
                    "epoch": epoch,
                    "train_loss": _last(progress_tracker.train_metrics),
                    "validation_loss": _last(progress_tracker.validation_metrics),
                    "learning_rate": float(progress_tracker.learning_rate),
                    "seconds": seconds,
                    "tokens_per_s": tokens_per_epoch / seconds if seconds else None,
                    "trainable_share": trainable_share(peft_model),
                    **{k: v for k, v in vices.items() if k != "flags"},
                    "flags": ",".join(vices["flags"]),
                }
            )
            outputs = [
                {"epoch": epoch, "product_id": pid, "output": text}
                for pid, text in zip(probe["product_id"], texts, strict=True)
            ]
            self.outputs += outputs
            log_epoch(self.log, self.rows[-1], outputs)
            logger.info("Epoch %d: %s", epoch, self.rows[-1])

    return EpochRecorder()


def ctrl_c_stops_training() -> Any:
    """A Ludwig callback that gives Ctrl-C back its usual meaning during training: stop now
    (``KeyboardInterrupt``), as a kill would, leaving the run to resume from its last
    checkpoint. Ludwig's own handler instead ends training after the next step as if it were
    complete, so the pipeline went on to save a part-trained student."""
    from ludwig.callbacks import Callback

    class CtrlCStopsTraining(Callback):
        def on_trainer_train_setup(self, trainer: Any, *_: Any, **__: Any) -> None:
            handler = getattr(trainer, "original_sigint_handler", None)  # set on the main thread
            if handler is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, handler)

    return CtrlCStopsTraining()


@contextlib.contextmanager
def ray_cluster(ludwig_config: dict[str, Any], ray_params: RayParams) -> Iterator[None]:
    """For ``backend: {type: ray}``: connected to the configured cluster (or a Ray started here
    for the run, stopped after it) with the Ray backend's fixes applied; otherwise nothing."""
    if (ludwig_config.get("backend") or {}).get("type") != "ray":
        yield
        return
    import ray

    from product_descgen.training import ludwig_ray_compat

    ludwig_ray_compat.check_backend(ludwig_config["backend"])
    ludwig_ray_compat.apply()
    started = not ray.is_initialized()
    if started:
        address = ray_params.address or os.environ.get("RAY_ADDRESS") or "local"
        logger.info("Ray: %s", "starting a local cluster" if address == "local" else address)
        local = {"num_cpus": ray_params.num_cpus} if address == "local" else {}
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, **local)  # fmt: skip
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def train_student(
    ludwig_config: dict[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    probe_products: pd.DataFrame,
    params: FinetuneParams,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune the student; resumes from ``params.work_dir`` when a killed run left a
    checkpoint. ``probe_products``: the validation split's products (the first
    ``params.probe.size`` are described after every epoch). ``callbacks``: Ludwig callbacks run
    beside the epoch recorder (timers, monitors)."""
    from ludwig.api import LudwigModel
    from transformers import AutoTokenizer

    if train.empty:
        raise ValueError("the training set is empty: teacher_generation accepted no examples")
    if validation.empty:
        raise ValueError("the validation set is empty: needed for early stopping")
    probe = probe_products.head(params.probe.size)
    if probe.empty:
        raise ValueError("no products to probe: the probe describes the validation split's")
    missing = template_fields(params.prompt_template) - set(probe.columns)
    if missing:
        raise ValueError(
            f"the probe products lack the prompt's fields {sorted(missing)}: the probe "
            "describes the validation split's products"
        )
    ludwig_compat.apply()
    tokenizer = AutoTokenizer.from_pretrained(ludwig_config["base_model"])
    columns = [params.input_column, params.target_column]
    text = (train[params.input_column] + train[params.target_column]).tolist()
    tokens_per_epoch = sum(len(ids) for ids in tokenizer(text)["input_ids"])
    references = train[params.target_column].tolist()
    recorder = make_recorder(probe, references, params, tokenizer, tokens_per_epoch)
    with ray_cluster(ludwig_config, params.ray):  # before Ludwig, which would start its own
        fixes = [*ludwig_compat.fix_callbacks(), *bnb_compat.fix_callbacks()]
        model = LudwigModel(
            ludwig_config,
            logging_level=logging.WARNING,
            callbacks=[recorder, ctrl_c_stops_training(), *fixes, *callbacks],
        )
        stats = _train(model, ludwig_config, train[columns], validation[columns], recorder, params)
    history = with_epoch_losses(pd.DataFrame(recorder.rows), stats)
    return TrainResult(model, history, pd.DataFrame(recorder.outputs))


def _train(
    model: Any,
    ludwig_config: dict[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    recorder: Any,
    params: FinetuneParams,
) -> Any:
    """``model.train`` into ``params.work_dir``, resuming a killed run's checkpoint made of the same
    config and data (see ``finetune.on_changed_checkpoint``) with the history of its epochs;
    Ludwig's training statistics."""
    work_dir = Path(params.work_dir)
    resume, epochs_kept = prepare_run(
        work_dir,
        training_fingerprint(ludwig_config, train, validation),
        recorder.probe_key,
        params.on_changed_checkpoint,
    )
    recorder.restore(epochs_kept)
    results = model.train(
        training_set=train,
        validation_set=validation,
        output_directory=str(work_dir),
        experiment_name=RUN_NAME,
        model_name="",
        model_resume_path=str(resume) if resume else None,
        skip_save_processed_input=True,
    )
    return results.train_stats


def epoch_losses(split_stats: dict[str, Any], epochs: int) -> dict[int, float]:
    """Last combined loss per epoch from Ludwig's training statistics: ``(epoch, step, value)``
    entries, or plain values when Ludwig evaluated exactly once per epoch."""
    values = split_stats.get("combined", {}).get("loss", [])
    if values and isinstance(values[0], (tuple, list)):
        return {int(epoch): float(value) for epoch, _step, value in values}
    if len(values) == epochs:
        return {i + 1: float(v) for i, v in enumerate(values)}
    return {}


def with_epoch_losses(history: pd.DataFrame, stats: Any) -> pd.DataFrame:
    """Fill losses the callback could not see yet: Ludwig may evaluate after ``on_epoch_end``."""
    if history.empty:
        return history
    epochs = int(history["epoch"].max())
    train = epoch_losses(getattr(stats, "training", {}) or {}, epochs)
    validation = epoch_losses(getattr(stats, "validation", {}) or {}, epochs)
    return history.assign(
        train_loss=history["train_loss"].fillna(history["epoch"].map(train)),
        validation_loss=history["validation_loss"].fillna(history["epoch"].map(validation)),
    )
