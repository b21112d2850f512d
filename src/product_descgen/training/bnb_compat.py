"""A narrow workaround for a bitsandbytes 0.50.2 defect met by QLoRA training on CPUs with
AVX512-BF16 (docs/upstream.md has the report to file). Guarded by version (``AFFECTED``);
tests/training/test_bnb_compat.py fails without it on such CPUs.

A ``Linear4bit`` in eval mode repacks its 4-bit weight in place, on its first forward without
gradients, into a layout for CPU inference. Training mode does not undo it:

- the training that follows runs the layer through ``gemv_4bit``, which has no backward: no
  gradient flows through the frozen base path ("an autograd kernel was not registered"), so
  the adapters of earlier layers learn from a truncated graph, silently;
- only ``state_dict()`` (a checkpoint save) converts the weight back, and lossily: the block
  scales are re-quantized from bfloat16, so the frozen base drifts with every evaluation.

Ludwig validates after every epoch and the project probes the model, so both met every CPU
run. An uninterrupted run trained on correctly only because Ludwig saves a checkpoint after
the probe; a resumed run that probes its checkpoint first trained its next epoch without the
base path's gradients. The drift met every run. The fix keeps the 4-bit layers of the model
in training in the training layout: it clears each ``Linear4bit``'s public
``support_avx512bf16_for_cpu`` flag as training starts. Validation and probes then compute as
training does (the probe's generation took 15% longer here). Inference outside training (the
transformers backend) keeps the fast layout.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

logger = logging.getLogger(__name__)

AFFECTED = {"0.50.2"}
CPU_LAYOUT_FLAG = "support_avx512bf16_for_cpu"


def affected() -> bool:
    return version("bitsandbytes") in AFFECTED


def keep_training_layout(model: Any) -> int:
    """Keep ``model``'s 4-bit layers in the training layout (evaluation included); the number
    of layers changed."""
    import bitsandbytes

    layers = [
        m for m in model.modules()
        if isinstance(m, bitsandbytes.nn.Linear4bit) and getattr(m, CPU_LAYOUT_FLAG, False)
    ]  # fmt: skip
    for layer in layers:
        setattr(layer, CPU_LAYOUT_FLAG, False)
    return len(layers)


def fix_callbacks() -> list[Any]:
    """The Ludwig callback that applies :func:`keep_training_layout` as training starts (this
    bitsandbytes version only)."""
    if not affected():
        return []
    from ludwig.callbacks import Callback

    class TrainingLayout(Callback):
        def on_trainer_train_setup(
            self, trainer: Any, save_path: str, is_coordinator: bool, **_: Any
        ) -> None:
            if changed := keep_training_layout(trainer.model):
                logger.info("%d 4-bit layers kept in the training layout (bnb_compat)", changed)

    return [TrainingLayout()]
