"""Narrow fixes for Ludwig 0.17.10's Ray backend with LLM fine-tuning (``model_type: llm``,
``trainer.type: finetune``). Guarded by the Ludwig version (``AFFECTED``); each has a test in
tests/training/test_ludwig_ray_compat.py or the Ray finetune test.

A. ``RayBackend.create_trainer`` looks ``finetune`` up in the LLM Ray trainer registry, which
   0.17.10 leaves empty ("Key 'finetune' not in registry"); its Ray worker function builds the
   ECD ``RemoteTrainer``. Fix: register a ``RayTrainerV2`` whose worker builds
   ``RemoteLLMFineTuneTrainer``.
B. The worker wraps the model with its adapter (``prepare_for_training``) but the driver's copy
   stays bare, so the returned weights do not fit it: the driver wraps its copy the same way.
C. With the Dask engine, the validation and test sets are silently trained on: Ludwig tags
   rows by their position after ``dd.concat(..., ignore_index=True)``, and Dask restarts that
   index per partition, so every row lands in the training split. Fix: tag each set first.
D. The full state dict of a 4-bit model carries bitsandbytes' quant-state entries that the
   driver's model rejects: only the trainable (adapter) weights travel back.
E. Ray Train moves each worker to its own directory: a relative ``output_directory`` and resume
   path miss the run. The worker works in the driver's directory (one node or a shared disk).
F. Ludwig's callbacks run on pickled copies in the worker: what they record (the project's
   epoch history, probes, vice measures) is sent back and set on the driver's callbacks.
G. Not fixed: ``trainer.strategy`` is ignored and every worker trains its own copy of the model
   (no gradient exchange; the first worker's is kept), so ``num_workers`` above 1 only wastes
   machines. :func:`check_backend` refuses it with that reason.

Call :func:`apply` before training with ``backend: {type: ray}``; workers call it themselves
(a monkeypatch in the driver does not exist in a Ray worker process).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import ludwig

AFFECTED = {"0.17.10"}
CALLBACK_STATE = "product_descgen_callback_state"
WEIGHTS_FILE, RESULTS_FILE = "adapter.safetensors", "results.json"
_applied = False


def affected() -> bool:
    return ludwig.__version__ in AFFECTED


def check_backend(backend: dict[str, Any]) -> None:
    """Refuse Ray settings this Ludwig cannot honour (defect G)."""
    workers = (backend.get("trainer") or {}).get("num_workers", 1)
    if affected() and workers > 1:
        raise ValueError(
            f"finetune.ludwig.backend.trainer.num_workers is {workers}, but Ludwig "
            f"{ludwig.__version__}'s Ray backend trains each worker's own copy of the model (its "
            "trainer.strategy is ignored: no gradient exchange): use num_workers: 1"
        )


def trainable_state(model: Any) -> dict[str, Any]:
    """The weights training changed (the adapter's): not the frozen base, not its quant state."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.cpu().state_dict().items() if k in trainable}


def tag_splits(frames: list[Any], concat: Any) -> Any:
    """The sets concatenated with their split (0 train, 1 validation, 2 test) set per row
    before concatenating, so no engine's index can mix them up (fix C)."""
    import numpy as np
    from ludwig.constants import SPLIT

    parts = [
        df.assign(**{SPLIT: np.int8(split)}) for split, df in enumerate(frames) if df is not None
    ]
    return concat(parts, ignore_index=True)


def _write_result(directory: str, state: dict[str, Any], results: list, trainer: Any) -> None:
    from safetensors.torch import save_file

    save_file({k: v.clone().contiguous() for k, v in state.items()}, f"{directory}/{WEIGHTS_FILE}")
    meta = {"validation_field": trainer.validation_field,
            "validation_metric": trainer.validation_metric, "results": results}  # fmt: skip
    Path(directory, RESULTS_FILE).write_text(json.dumps(meta, default=float))


def _read_result(directory: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors.torch import load_file

    meta = json.loads(Path(directory, RESULTS_FILE).read_text())
    return load_file(f"{directory}/{WEIGHTS_FILE}", device="cpu"), meta


def llm_train_loop(config: dict[str, Any]) -> None:
    """The Ray Train worker: Ludwig's LLM fine-tuning trainer on this worker's shards."""
    import ray
    import ray.train
    from ludwig.backend.ray import RayDatasetShard
    from ludwig.distributed import init_dist_strategy
    from ludwig.trainers.trainer_llm import RemoteLLMFineTuneTrainer
    from ludwig.utils.torch_utils import initialize_pytorch
    from ray.train.torch import get_device

    apply()  # this worker process's own Ludwig fixes
    config = dict(config)
    os.chdir(config.pop("driver_cwd"))  # fix E
    executable_kwargs, model_ref = config.pop("executable_kwargs"), config.pop("model_ref")
    metadata, features = config.pop("training_set_metadata"), config.pop("features")
    initialize_pytorch()
    init_dist_strategy("local")

    def shard(name: str) -> Any:
        try:
            data = ray.train.get_dataset_shard(name)
        except KeyError:
            return None
        return None if data is None else RayDatasetShard(data, features, metadata)

    device = get_device()
    model = ray.get(model_ref).to(device)
    trainer = RemoteLLMFineTuneTrainer(
        model=model, device=str(device), report_tqdm_to_ray=True, **executable_kwargs
    )
    trained, *results = trainer.train(shard("train"), shard("val"), shard("test"), **config)
    callbacks = executable_kwargs.get("callbacks") or []
    with tempfile.TemporaryDirectory() as directory:
        _write_result(directory, trainable_state(trained), results, trainer)  # fix D
        ray.train.report(
            metrics={CALLBACK_STATE: [dict(vars(cb)) for cb in callbacks]},  # fix F
            checkpoint=ray.train.Checkpoint.from_directory(directory),
        )


def _register_finetune_trainer() -> None:
    import ray
    from ludwig.backend import ray as ludwig_ray
    from ludwig.schema.trainer import FineTuneTrainerConfig
    from ludwig.trainers.registry import get_llm_ray_trainers_registry

    if "finetune" in get_llm_ray_trainers_registry():
        return

    class RayLLMFineTuneTrainer(ludwig_ray.RayTrainerV2):
        """Ludwig's Ray trainer, with the LLM fine-tuning worker (fixes A, B, E, F)."""

        @staticmethod
        def get_schema_cls() -> Any:
            return FineTuneTrainerConfig

        def train(self, training_set: Any, validation_set: Any = None, test_set: Any = None,
                  **kwargs: Any) -> tuple:  # fmt: skip
            datasets = {"train": training_set.to_ray_dataset(shuffle=True)}
            for name, data in (("val", validation_set), ("test", test_set)):
                if data is not None:
                    datasets[name] = data.to_ray_dataset(shuffle=False)
            config = {
                "executable_kwargs": self.executable_kwargs, "model_ref": ray.put(self.model),
                "training_set_metadata": training_set.training_set_metadata,
                "features": training_set.features, "driver_cwd": os.getcwd(), **kwargs,
            }  # fmt: skip
            result = ludwig_ray.run_train_remote(
                llm_train_loop, trainer_kwargs=self.trainer_kwargs, datasets=datasets,
                train_loop_config=config,
            )  # fmt: skip
            states = (result.metrics or {}).get(CALLBACK_STATE) or []
            callbacks = self.executable_kwargs.get("callbacks") or []
            for callback, state in zip(callbacks, states, strict=True):
                vars(callback).update(state)
            with result.checkpoint.as_directory() as directory:
                state, meta = _read_result(directory)
            self._validation_field = meta["validation_field"]
            self._validation_metric = meta["validation_metric"]
            self.model.prepare_for_training()  # fix B: the adapter, as the worker had it
            expected = {n for n, p in self.model.named_parameters() if p.requires_grad}
            loaded = self.model.load_state_dict(state, strict=False)
            if loaded.unexpected_keys or expected - set(state):
                raise RuntimeError(
                    "the Ray worker's adapter weights do not fit the driver's model: unexpected "
                    f"{loaded.unexpected_keys[:5]}, missing {sorted(expected - set(state))[:5]}"
                )
            return (self.model, *meta["results"])

    get_llm_ray_trainers_registry()["finetune"] = RayLLMFineTuneTrainer


def _fix_concatenate_df() -> None:
    from ludwig.data import concatenate_datasets, preprocessing

    def concatenate_df(train_df: Any, vali_df: Any, test_df: Any, backend: Any) -> Any:
        return tag_splits([train_df, vali_df, test_df], backend.df_engine.df_lib.concat)

    concatenate_datasets.concatenate_df = preprocessing.concatenate_df = concatenate_df


def apply() -> None:
    """Apply the project's Ludwig fixes and these; idempotent; nothing on other versions."""
    global _applied  # noqa: PLW0603 - applied once per process
    from product_descgen.training import ludwig_compat

    ludwig_compat.apply()
    if _applied or not affected():
        return
    _register_finetune_trainer()
    _fix_concatenate_df()
    _applied = True
