"""Serving a bitsandbytes nf4 model on CPU: many-row calls (prompts) through dequantise +
float32 matmul, few-row calls (decode steps) through bitsandbytes' packed CPU kernel.

bitsandbytes 0.50, on a CPU with AVX512-BF16 and in eval mode, repacks each 4-bit weight at its
first call and from then on sends every call to one kernel (``gemv_4bit``: bf16 activations,
bf16 block scales). That kernel is fast for the few rows of a decode step and slow for a
prompt's many rows; dequantising the weight and multiplying in float32 (what bitsandbytes does
everywhere else, and the numerics QLoRA trained the adapter with) is the reverse. Measured on
a 576->1536 layer, 2 threads (``benchmarks/nf4_cpu_paths.py``, docs/benchmarks.md): 1 row
67 against 289 us, 12 rows 215 against 336 us, 32-64 rows about equal, 1,560 rows 23.8
against 9.8 ms.

:func:`split_paths` gives each 4-bit layer both forms: its own weight (dequantise + matmul for
calls of more than ``max_packed_rows`` rows) and a packed copy, made at load time, for the
rest. The packed copy costs as much memory again as the 4-bit weights (53 MB for
SmolLM2-135M's layers); the embedding and output layer stay float32 as bitsandbytes leaves them.
"""

from __future__ import annotations

import copy
import logging
import types
from typing import Any

logger = logging.getLogger(__name__)

MAX_PACKED_ROWS = 48  # the two paths cost about the same at 64 rows on this CPU


def _forward(self: Any, x: Any) -> Any:
    rows = x.numel() // x.shape[-1] if x.numel() else 0
    if self.training or x.requires_grad or rows > self.max_packed_rows:
        return type(self).forward(self, x)  # bitsandbytes' own: dequantise + matmul
    import bitsandbytes as bnb

    bias = None if self.bias is None else self.bias.to(self.compute_dtype)
    out = bnb.matmul_4bit(
        x.to(self.compute_dtype), self.packed_weight, quant_state=self.packed_state, bias=bias
    )
    return out.to(x.dtype)


def packable(module: Any) -> bool:
    """Whether bitsandbytes' CPU kernel can take this layer (its packing's shape rules)."""
    out_features, in_features = module.weight.quant_state.shape
    return out_features % 32 == 0 and in_features % 2 == 0


def split_paths(model: Any, max_packed_rows: int = MAX_PACKED_ROWS) -> int:
    """Give every CPU nf4 layer of ``model`` the two paths above; the number of layers split.
    Layers the kernel cannot take, and machines without it, keep bitsandbytes' dequantise path."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import _convert_weight_packed_for_cpu, has_avx512bf16

    kernel = has_avx512bf16()
    split = 0
    for module in model.modules():
        if not isinstance(module, bnb.nn.Linear4bit) or module.weight.device.type != "cpu":
            continue
        module.support_avx512bf16_for_cpu = False  # no repacking of the module's own weight
        if not kernel or not packable(module):
            continue
        packed, state = _convert_weight_packed_for_cpu(
            module.weight.data.clone(), copy.deepcopy(module.weight.quant_state)
        )
        module.register_buffer("packed_weight", packed, persistent=False)
        module.packed_state = state
        module.max_packed_rows = max_packed_rows
        module.forward = types.MethodType(_forward, module)
        split += 1
    logger.info("nf4 on CPU: %d layers with a packed copy for decode steps", split)
    return split
