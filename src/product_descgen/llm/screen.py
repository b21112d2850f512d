"""Greedy decoding over a float32 output layer, screened with a float16 copy: the same tokens.

A decode step's output layer is the largest product in it: 262,144 x 640 for Gemma 3 270M
(671 MB in float32, 60% of its parameters), 49,152 x 576 for SmolLM2-135M. On this CPU
fbgemm's float16-weight product (the weights widened to float32 in registers, the inputs
and sums in float32) ran it 3-10x faster than MKL's float32 one (docs/benchmarks.md). Its
logits differ from the float32 ones by the weights' float16 rounding, which flips near-tied
greedy choices (a float16 output layer changed 18 of 64 greedy teacher drafts), so here it
only screens:

1. approximate logits ``a`` from the float16 copy, and the loop's processors applied to them;
2. per row, a bound ``b`` on ``|a - l|`` for every token, from the weights' float16 rounding
   (at most ``2**-11`` of each weight) and both float32 sums' rounding (``gamma_K = K u / (1 -
   K u)`` of the sum of the products' sizes), through Cauchy-Schwarz: ``||h|| * (2**-11 max_t
   ||w_t|| + 2 gamma_K max_t ||w_t||)``, doubled for safety;
3. every token whose processed score is within ``2 * lipschitz * b`` of the row's best is a
   candidate: no other token can win, since the processors move a score by at most
   ``lipschitz`` times its error;
4. the candidates' float32 logits are computed from their own weight rows, written over the
   approximate ones, and the processors are applied again: a candidate's score is then its
   processed float32 score, while the others' can only fall (the penalties only lower a
   score, and blocking is idempotent), so the greedy choice is the float32 layer's (its sums
   taken in another order than the BLAS's: equal up to float rounding, as with the row blocks
   of ``output_rows.py``; the teacher's benchmark drafts came out the same 64 texts).

Only for greedy decoding with processors that only lower scores (repetition penalty, n-gram
blocking); anything else keeps the float32 layer. Needs fbgemm (x86 with AVX2). The copy is
made at load and costs memory: fbgemm's packed format pads the inner dimension to a multiple
of 512 (Gemma 3 270M's copy holds 507 MB, SmolLM2-135M's 91 MB).
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)

SAFETY = 2.0  # the bound is worst-case already; doubled against any summation it missed
BLOCK = 16  # rows per fbgemm call: 32 rows as one call ran 40% slower than as two
WHOLE = 2048  # candidates per row beyond which the whole float32 layer is cheaper to run

_made: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one copy per layer


class ScreenedHead:
    """A float32 output layer's weight (``[vocabulary, features]``) with a float16 copy
    packed for fbgemm, and the error bound per unit of hidden-state norm."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight.detach()
        self.version = (weight.data_ptr(), weight._version)  # a changed weight: a new copy
        low, high = self.weight.aminmax()
        if max(-float(low), float(high)) > torch.finfo(torch.float16).max:
            raise ValueError("weights beyond float16's range")
        self.packed = torch.ops.quantized.linear_prepack_fp16(self.weight, None)
        # float16 rounds each weight to within 2**-11 of itself (relative), or 2**-25 below
        # its normal range; the float32 sums of K products each to gamma_K of their sizes
        features = self.weight.shape[1]
        largest = float(torch.linalg.vector_norm(self.weight, dim=1).max())
        rounding = 2.0**-11 * largest + math.sqrt(features) * 2.0**-25
        unit = 2.0**-24 * features
        gamma = unit / (1 - unit)
        self.per_norm = SAFETY * (rounding + 2 * gamma * largest * (1 + 2.0**-11))

    @classmethod
    def of(cls, layer: object) -> ScreenedHead | None:
        """For a bias-free float32 CPU ``nn.Linear`` where fbgemm runs (made once per layer,
        shared by every decoder of the model); otherwise None."""
        if (
            type(layer) is not torch.nn.Linear
            or layer.bias is not None
            or layer.weight.dtype != torch.float32
            or layer.weight.device.type != "cpu"
        ):
            return None
        made = _made.get(layer)
        if made is None or made.version != (layer.weight.data_ptr(), layer.weight._version):
            try:
                _made[layer] = cls(layer.weight)
            except (RuntimeError, ValueError) as err:  # no fbgemm here, or weights too large
                logger.info("Output layer not screened (%s)", err)
                return None
        return _made[layer]

    def approximate(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of ``hidden`` (``[rows, features]``, float32) from the float16 copy."""
        parts = [
            torch.ops.quantized.linear_dynamic_fp16(hidden[start : start + BLOCK], self.packed)
            for start in range(0, hidden.shape[0], BLOCK)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def bound(self, hidden: torch.Tensor) -> torch.Tensor:
        """Per row, a bound on every approximate logit's distance from the float32 one."""
        return hidden.norm(dim=-1) * self.per_norm

    def choose(
        self,
        hidden: torch.Tensor,
        approximate: torch.Tensor,
        process: Callable[[torch.Tensor], torch.Tensor],
        lipschitz: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's greedy token under ``process`` (in place, lowering scores only, at most
        ``lipschitz`` times a change of its input) as with the float32 layer, and the final
        scores (exact for the candidates). ``approximate`` is overwritten."""
        scores = process(approximate)
        best = scores.max(dim=-1).values
        floor = best - 2 * lipschitz * self.bound(hidden)
        rows, tokens = (scores >= floor[:, None]).nonzero(as_tuple=True)
        if len(tokens) > WHOLE * len(hidden):  # a loose bound (flat logits): every logit
            exact = (hidden @ self.weight.t())[rows, tokens]
        else:
            exact = (hidden[rows] * self.weight[tokens]).sum(-1)
        scores[rows, tokens] = exact
        scores = process(scores)
        return scores.max(dim=-1).indices, scores
