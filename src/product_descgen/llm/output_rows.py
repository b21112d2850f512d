"""The output layer at the row counts where the BLAS is slow: computed as a larger block.

A decode step multiplies a few rows of hidden states by the output layer (262,144 x 640 for
Gemma 3 270M, 60% of its parameters). On this CPU, MKL's float32 kernel for that product is
much slower at some row counts than at larger ones (2 threads, the teacher's layer: 8 rows
81 ms, 12 rows 114 ms, 16 rows 53 ms; the student's: 12 rows 8.5 ms, 16 rows 7.3 ms), and in a
decode loop the row count falls as rows finish. :func:`pad_slow_row_counts` times the layer
once, at load, for each row count below ``BLOCK`` and for ``BLOCK`` itself, and from then on
computes the counts that are slower than a ``BLOCK``-row product as that product (zero rows
added, their outputs dropped). Other counts, and anything that needs gradients, are untouched.
Which counts gain is the BLAS's business, so it is measured on the machine, not assumed.
"""

from __future__ import annotations

import logging
import time
import types
from typing import Any

import torch

logger = logging.getLogger(__name__)

BLOCK = 16  # rows of the product a slow row count is computed as
MARGIN = 0.9  # pad only where the block is at least 10% faster


def _seconds(layer: Any, rows: int, repeats: int = 2) -> float:
    x = torch.zeros(rows, layer.in_features, dtype=layer.weight.dtype)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(x, layer.weight, layer.bias)
        best = min(best, time.perf_counter() - start)
    return best


def slow_row_counts(layer: Any, max_rows: int) -> set[int]:
    """Row counts below ``BLOCK`` (up to ``max_rows``) at which ``layer`` takes at least
    ``1 / MARGIN`` times as long as at ``BLOCK`` rows (fastest of two timings each)."""
    if max_rows < 2:
        return set()
    with torch.inference_mode():
        _seconds(layer, BLOCK, 1)  # warm-up
        block = _seconds(layer, BLOCK)
        counts = range(2, min(max_rows, BLOCK - 1) + 1)
        return {rows for rows in counts if block < MARGIN * _seconds(layer, rows)}


def _forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // x.shape[-1] if x.numel() else 0
    if rows not in self.padded_rows or x.requires_grad:
        return type(self).forward(self, x)
    flat = x.reshape(rows, x.shape[-1])
    block = torch.cat([flat, flat.new_zeros(BLOCK - rows, x.shape[-1])])
    out = torch.nn.functional.linear(block, self.weight, self.bias)[:rows]
    return out.reshape(*x.shape[:-1], out.shape[-1])


def pad_slow_row_counts(model: Any, max_rows: int) -> set[int]:
    """Time ``model``'s output layer and compute its slow row counts as ``BLOCK`` rows (a
    float CPU ``nn.Linear`` only); the counts padded."""
    layer = model.get_output_embeddings()
    if (
        type(layer) is not torch.nn.Linear
        or layer.weight.device.type != "cpu"
        or not layer.weight.dtype.is_floating_point
    ):
        return set()
    started = time.perf_counter()
    counts = slow_row_counts(layer, max_rows)
    layer.padded_rows = counts
    layer.forward = types.MethodType(_forward, layer)
    logger.info(
        "Output layer: row counts %s computed as %d rows (timed in %.1f s)",
        sorted(counts) or "none", BLOCK, time.perf_counter() - started,
    )  # fmt: skip
    return counts
