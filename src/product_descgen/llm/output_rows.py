"""The output layer at the row counts where the BLAS is slow: computed as a larger block.

A decode step multiplies a few rows of hidden states by the output layer (262,144 x 640 for
Gemma 3 270M, 60% of its parameters; 49,152 x 576 for SmolLM2-135M). On this CPU, MKL's
float32 kernel for that product is much slower at some row counts than at a 16-row block, and
in a decode loop the row count falls as rows finish: in the student's decode loop, 12 rows
took 18.8 ms and the same 12 as a 16-row block 9.7 ms; the teacher's layer, 12 rows 113 ms
against 52 ms (docs/benchmarks.md).

Which counts are slow is the BLAS's and the machine's business, and it shows only under the
decode loop's own conditions: timed alone, the student's 113 MB layer stays in this CPU's
260 MB cache and the slow spot disappears. So the layer decides in the loop: the first
``TRIALS`` calls at each row count below ``BLOCK`` alternate between the plain product and
the ``BLOCK``-row one (zero rows added, their outputs dropped), and from then on that count
goes the faster way (the block only if at least ``1 - MARGIN`` faster). The two ways differ
only in float rounding (about 1e-5 relative). Anything that needs gradients is untouched.
"""

from __future__ import annotations

import contextlib
import logging
import time
import types
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import torch

from product_descgen.llm import scratch

logger = logging.getLogger(__name__)

BLOCK = 16  # rows of the product a slow row count is computed as
MARGIN = 0.9  # pad only where the block is at least 10% faster
TRIALS = 2  # timed calls each way per row count before choosing

_logits: ContextVar[dict[str, torch.Tensor] | None] = ContextVar("logits", default=None)


class RowChoice:
    """Per row count below ``BLOCK``: plain or padded to a block, chosen from timed calls.
    ``fixed``: always that way, nothing timed (True pads every count, False none)."""

    def __init__(
        self, fixed: bool | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.fixed, self.clock = fixed, clock
        self.chosen: dict[int, bool] = {}
        self.seconds: dict[int, tuple[list[float], list[float]]] = {}  # (plain, padded)

    def padded(self, rows: int) -> bool | None:
        """How ``rows`` rows are computed; None while that count is still being timed."""
        return self.fixed if self.fixed is not None else self.chosen.get(rows)

    def trial(self, rows: int) -> bool:
        """Which way the next timed call at ``rows`` goes (plain first, then alternating)."""
        plain, padded = self.seconds.setdefault(rows, ([], []))
        return len(padded) < len(plain)

    def record(self, rows: int, padded: bool, seconds: float) -> None:
        times = self.seconds[rows]
        times[padded].append(seconds)
        if len(times[True]) >= TRIALS:
            self.chosen[rows] = min(times[True]) < MARGIN * min(times[False])
            way = "block" if self.chosen[rows] else "plain"
            logger.debug("Output layer at %d rows: %s", rows, way)


@contextlib.contextmanager
def reuse_logits() -> Iterator[None]:
    """While active, every call of an output layer given the choice below writes its logits
    into one buffer, the same for every call: for a decode loop that is done with a step's
    logits before the next step (the teacher's are 32 MB a step at 32 rows, which the speed
    workers' allocator otherwise maps and pages in afresh each time)."""
    token = _logits.set({})
    try:
        yield
    finally:
        _logits.reset(token)


def _linear(layer: Any, flat: torch.Tensor) -> torch.Tensor:
    """``layer(flat)`` for 2-D ``flat``, into the reused buffer inside :func:`reuse_logits`."""
    store = _logits.get()
    weight = scratch.float_weight(layer)  # None for, e.g., torchao's int8 tensor
    if store is None or layer.bias is not None or weight is None:
        return torch.nn.functional.linear(flat, layer.weight, layer.bias)
    size = flat.shape[0] * layer.out_features
    buffer = store.get("logits")
    if buffer is None or buffer.numel() < size or buffer.dtype != flat.dtype:
        buffer = store["logits"] = torch.empty(size, dtype=flat.dtype)
    out = buffer[:size].view(flat.shape[0], layer.out_features)
    return torch.matmul(flat, weight.t(), out=out)


def _block(layer: Any, x: torch.Tensor, rows: int) -> torch.Tensor:
    flat = x.reshape(rows, x.shape[-1])
    block = torch.cat([flat, flat.new_zeros(BLOCK - rows, x.shape[-1])])
    out = _linear(layer, block)[:rows]
    return out.reshape(*x.shape[:-1], out.shape[-1])


def _plain(layer: Any, x: torch.Tensor, rows: int) -> torch.Tensor:
    out = _linear(layer, x.reshape(rows, x.shape[-1]))
    return out.reshape(*x.shape[:-1], out.shape[-1])


def _forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // x.shape[-1] if x.numel() else 0
    if x.requires_grad or x.dtype != self.weight.dtype or not rows:
        return type(self).forward(self, x)
    if not 2 <= rows < BLOCK:
        return _plain(self, x, rows)
    choice: RowChoice = self.row_choice
    padded = choice.padded(rows)
    if padded is not None:
        return _block(self, x, rows) if padded else _plain(self, x, rows)
    padded = choice.trial(rows)
    start = choice.clock()
    out = _block(self, x, rows) if padded else _plain(self, x, rows)
    choice.record(rows, padded, choice.clock() - start)
    return out


def choose_row_blocks(model: Any, fixed: bool | None = None) -> RowChoice | None:
    """Give ``model``'s output layer (a float CPU ``nn.Linear`` only) the choice above; the
    layer's :class:`RowChoice`, or None if the layer is left as it is."""
    layer = model.get_output_embeddings()
    if (
        type(layer) is not torch.nn.Linear
        or layer.weight.device.type != "cpu"
        or not layer.weight.dtype.is_floating_point
    ):
        return None
    layer.row_choice = RowChoice(fixed)
    layer.forward = types.MethodType(_forward, layer)
    return layer.row_choice
