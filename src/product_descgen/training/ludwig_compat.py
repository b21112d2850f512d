"""Narrow fixes for Ludwig 0.17.10 defects hit by LLM fine-tuning. Each is guarded by the
Ludwig version (``AFFECTED``) and has a test that fails without it (tests/training).

1. ``checkpoint_state``: with 4-bit quantisation, ``train()`` fails at the end, reloading the best
   checkpoint: "Unexpected keys found in state dict: [...weight.absmax, ...quant_map, ...]".
   ``MultiNodeCheckpoint.get_model_state_dict`` drops frozen parameters but not the quant-state
   entries bitsandbytes stores beside them. Not CPU-specific.
2. ``null_adapters``: ``LudwigModel.load(dir)`` fails schema validation ("None is not of type
   'object'"): ``LLMModelConfig.to_dict()`` writes ``"adapters": null`` (into the saved config,
   and again when ``load`` re-validates the parsed config), which its own schema rejects.
3. ``max_new_tokens``: ``generation.max_new_tokens`` equal to the default (32) is taken as unset
   and raised to the output's maximum sequence length (4096 here); the fix makes Ludwig check
   whether the config sets the key rather than compare the value with the default.
4. ``LudwigModel.generate`` demands CUDA even for a non-quantised model: the project never calls
   it; inference uses ``predict()`` or peft (see product_descgen.training.export).
5. The saved model records the base model's absolute path: training and inference must agree on
   it (``check_base_model_path``).
6. ``resumed_schedule``: a resumed run restarts the learning-rate schedule. The checkpoint's
   scheduler state is loaded, then ``Trainer.train`` builds a new ``LRScheduler`` at step 0, so
   the resumed epochs warm up and decay again over the whole run's steps (the demo's second
   epoch trained at the first epoch's rate), and a ``reduce_on_plateau`` schedule forgets
   its reductions (and its best value and patience count). The fix is a callback
   (:func:`fix_callbacks`) that saves the plateau schedule's state beside each checkpoint and,
   before the first resumed epoch, loads it and steps the new schedule to the checkpoint's
   step. (The checkpoint's own scheduler state cannot serve: it is saved from the schedule
   built at step 0, which training never steps.)
7. ``resumed_rng``: a resumed run seeds the random generators again (``set_random_seed`` in
   ``Trainer.train``), and the checkpoint holds no generator state, so the resumed epochs draw
   the first epoch's dropout masks again and train otherwise than the uninterrupted run. The
   same callback saves the generators' state beside each checkpoint and restores it before the
   first resumed epoch. (The batches' order is seeded per epoch and needs nothing.)

Call :func:`apply` once before using Ludwig (it is idempotent), and give the model the
callbacks of :func:`fix_callbacks`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import ludwig

logger = logging.getLogger(__name__)

AFFECTED = {"0.17.10"}
_applied: set[str] = set()


def affected() -> bool:
    return ludwig.__version__ in AFFECTED


def frozen_state_keys(state_keys: list[str], frozen: set[str]) -> list[str]:
    """Keys of frozen parameters and of any entry stored under them (``<param>.absmax``...)."""
    out = []
    for key in state_keys:
        parts = key.split(".")
        if any(".".join(parts[:i]) in frozen for i in range(len(parts), 0, -1)):
            out.append(key)
    return out


def _fix_checkpoint_state() -> None:
    from ludwig.utils.checkpoint_utils import MultiNodeCheckpoint

    def get_model_state_dict(self: Any) -> dict[str, Any]:
        state = self.model.state_dict()
        frozen = {n for n, p in self.model.named_parameters() if not p.requires_grad}
        for key in frozen_state_keys(list(state), frozen):
            del state[key]
        return state

    MultiNodeCheckpoint.get_model_state_dict = get_model_state_dict


def _drop_null_adapters(data: Any) -> Any:
    if isinstance(data, dict) and data.get("adapters", ...) is None:
        data = {k: v for k, v in data.items() if k != "adapters"}
    return data


def _fix_null_adapters() -> None:
    import ludwig.api
    from ludwig.schema.model_types.llm import LLMModelConfig

    to_dict, load_json = LLMModelConfig.to_dict, ludwig.api.load_json
    # an unset optional block must be absent, not null: on save and on re-validation ...
    LLMModelConfig.to_dict = lambda self: _drop_null_adapters(to_dict(self))
    # ... and when loading models saved before this fix
    ludwig.api.load_json = lambda *a, **k: _drop_null_adapters(load_json(*a, **k))


_explicit_max_new_tokens: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "explicit_max_new_tokens", default=False
)


def _fix_max_new_tokens() -> None:
    from ludwig.schema.model_types import utils as model_type_utils
    from ludwig.schema.model_types.base import ModelConfig

    from_dict = ModelConfig.from_dict  # a staticmethod
    set_max_new_tokens = model_type_utils._set_generation_max_new_tokens

    def from_dict_remembering(config: dict[str, Any]) -> Any:
        generation = config.get("generation") or {}
        token = _explicit_max_new_tokens.set("max_new_tokens" in generation)
        try:
            return from_dict(config)
        finally:
            _explicit_max_new_tokens.reset(token)

    def set_unless_explicit(config: Any) -> None:
        if not _explicit_max_new_tokens.get():  # Ludwig compared with the default value instead
            set_max_new_tokens(config)

    ModelConfig.from_dict = staticmethod(from_dict_remembering)
    model_type_utils._set_generation_max_new_tokens = set_unless_explicit


FIXES = {
    "checkpoint_state": _fix_checkpoint_state,
    "null_adapters": _fix_null_adapters,
    "max_new_tokens": _fix_max_new_tokens,
}


def apply(only: set[str] | None = None) -> None:
    """Apply the fixes this Ludwig version needs (``only``: a subset, for tests)."""
    if not affected():
        logger.info("Ludwig %s: no compatibility fixes needed", ludwig.__version__)
        return
    for name, fix in FIXES.items():
        if name in _applied or (only is not None and name not in only):
            continue
        fix()
        _applied.add(name)
        logger.debug("Ludwig compatibility fix applied: %s", name)


def check_base_model_path(model_dir: str | Path, expected: str | Path) -> None:
    """Fail clearly when a saved Ludwig model points at another base model than ``expected``."""
    config = json.loads((Path(model_dir) / "model_hyperparameters.json").read_text())
    saved = config.get("base_model")
    if saved and Path(saved).resolve() != Path(expected).resolve():
        raise ValueError(
            f"the saved model was trained on base model {saved}, not {expected}: "
            "train and predict with the same models.student setting"
        )


RESUME_STATE_FILE = "resume_state.pt"  # beside Ludwig's training progress (fixes 6 and 7)


def fix_callbacks() -> list[Any]:
    """The Ludwig callbacks this Ludwig version needs: one that resumes a killed run where it
    stopped, its learning-rate schedule at the checkpoint's step with the plateau reductions
    made before it (fix 6), and its random generators as they were at the checkpoint (fix 7)."""
    if not affected():
        return []
    import random

    import numpy as np
    import torch
    from ludwig.callbacks import Callback

    class Resumer(Callback):
        def __init__(self) -> None:
            self.started = False
            self.save_path: str | None = None  # where Ludwig keeps the checkpoint, if anywhere

        def on_checkpoint(self, trainer: Any, progress_tracker: Any) -> None:
            if self.save_path:  # after the checkpoint's evaluation, so after its plateau check
                cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
                plateau = trainer.scheduler.state_dict()["eval_scheduler_state"]
                state = {"torch": torch.get_rng_state(), "cuda": cuda, "plateau": plateau,
                         "numpy": np.random.get_state(), "python": random.getstate(),
                         "steps": int(progress_tracker.steps)}  # fmt: skip
                # atomically: a kill while writing leaves the previous file, never a torn one
                target = Path(self.save_path) / RESUME_STATE_FILE
                written = target.with_name(target.name + ".tmp")
                torch.save(state, written)
                written.replace(target)

        def saved_state(self, steps: int) -> dict[str, Any] | None:
            """The state saved with the checkpoint at ``steps`` (None: none, another
            checkpoint's, or unreadable: the run resumes without it, and says so)."""
            saved = Path(self.save_path) / RESUME_STATE_FILE if self.save_path else None
            if not (saved and saved.is_file()):
                return None
            try:  # written by this project, beside the checkpoint
                state = torch.load(saved, weights_only=False)
            except (EOFError, OSError, RuntimeError, pickle.UnpicklingError) as err:
                state = {"error": f"{type(err).__name__}: {err}"}
            if state.get("steps") != steps:
                logger.warning(
                    "%s is not the checkpoint's (step %d): %s; resuming without it (learning-"
                    "rate plateau reductions and random generators start afresh)", saved, steps,
                    state.get("error") or f"it was saved at step {state.get('steps')}",
                )  # fmt: skip
                return None
            return state

        def on_epoch_start(
            self, trainer: Any, progress_tracker: Any, save_path: str, **_: Any
        ) -> None:
            if self.started:
                return
            self.started = True  # the first epoch this process trains: a new schedule
            self.save_path = save_path
            steps = int(progress_tracker.steps)
            if not steps:
                return
            state = self.saved_state(steps)
            if state and state["plateau"]:  # its reductions apply at every step below
                schedule = trainer.scheduler.state_dict()
                schedule["eval_scheduler_state"] = state["plateau"]
                trainer.scheduler.load_state_dict(schedule)
            with warnings.catch_warnings():  # no optimizer step yet in this process
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step")
                for _ in range(steps):
                    trainer.scheduler.step()
            if state:
                torch.set_rng_state(state["torch"])
                if state["cuda"] and torch.cuda.is_available():
                    torch.cuda.set_rng_state_all(state["cuda"])
                np.random.set_state(state["numpy"])
                random.setstate(state["python"])
            logger.info(
                "Resumed at step %d: learning-rate schedule%s", steps,
                " (plateau reductions too) and random generators" if state else "",
            )  # fmt: skip

    return [Resumer()]
