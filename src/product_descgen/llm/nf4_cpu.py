"""Serving a bitsandbytes nf4 model on CPU: many-row calls (prompts) through dequantise +
float32 matmul, few-row calls (decode steps) through bitsandbytes' packed CPU kernel, from one
copy of the 4-bit weights.

bitsandbytes 0.50, on a CPU with AVX512-BF16 and in eval mode, repacks each 4-bit weight at its
first call and from then on sends every call to one kernel (``gemv_4bit``: bf16 activations,
bf16 block scales). That kernel is fast for the few rows of a decode step and slow for a
prompt's many rows; dequantising the weight and multiplying in float32 (what bitsandbytes does
everywhere else, and the numerics QLoRA trained the adapter with) is the reverse. Measured on
a 576->1536 layer, 2 threads (``benchmarks/nf4_cpu_paths.py``, docs/benchmarks.md): 1 row
67 against 289 us, 12 rows 215 against 336 us, 32-64 rows about equal, 1,560 rows 23.8
against 9.8 ms.

:func:`split_paths` packs each 4-bit layer at load time, as bitsandbytes would at its first
call, and keeps the layer's original quantisation state (float32 block scales) beside the
packed one. Calls of more than ``max_packed_rows`` rows undo the packing's nibble shuffle
(:func:`unpack`, a lossless byte permutation: about 0.25 ms for a 576x1536 layer, against
5-6 ms for its 1,024-row matmul) and take the dequantise path with the original scales, so
both paths read the one packed copy. The embedding and output layer stay float32 as
bitsandbytes leaves them.

:func:`packed_product` calls that kernel directly (``lib.gemv_4bit_inference_cpu_nf4_bf16``,
the function bitsandbytes' own CPU op calls, with the same bf16 conversions, so the same
numbers): bitsandbytes' Python path around it (dispatch, a per-call check of the code book
that reads a tensor element, dtype conversions that are no-ops) cost about 35 us a call, and
a student decode step makes 120 such calls (a 576x3072 group, 1 row: 98 against 64 us).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import types
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

# layer id -> its float weight, inside `dequantise_once`
_held: ContextVar[dict[int, Any] | None] = ContextVar("nf4_held", default=None)

MAX_PACKED_ROWS = 48  # the two paths cost about the same at 64 rows on this CPU
BLOCK_N = 32  # output rows per block in bitsandbytes' CPU packing (its default)


def unpack(packed: Any, shape: tuple[int, int]) -> Any:
    """The 4-bit weight in bitsandbytes' standard layout (``[N*K/2, 1]`` bytes, two values per
    byte, row-major, high nibble first) from its CPU packing (``[N, K/2]``: per block of 32
    output rows and per pair of input columns, byte ``2b+t`` holds row ``b``'s value in its
    low nibble and row ``16+b``'s in its high one, ``t`` the column of the pair). The inverse
    of ``bitsandbytes.functional._convert_weight_packed_for_cpu``'s weight, in a few
    whole-tensor operations on byte pairs."""
    import torch

    n, k = shape
    pairs = packed.view(torch.int16).view(n // BLOCK_N, k // 2, BLOCK_N // 2)  # (byte t=0, t=1)
    # in place where possible: three temporaries instead of nine (each a fresh mapping)
    low = (pairs << 4).bitwise_and_(0xF0)  # rows 0-15 of each block
    spare = (pairs >> 8).bitwise_and_(0x0F)
    low.bitwise_or_(spare)
    high = pairs & 0xF0  # rows 16-31
    torch.bitwise_right_shift(pairs, 12, out=spare)
    high.bitwise_or_(spare.bitwise_and_(0x0F))
    out = torch.empty(n // BLOCK_N, BLOCK_N, k // 2, dtype=torch.uint8)
    out[:, : BLOCK_N // 2] = low.transpose(1, 2)
    out[:, BLOCK_N // 2 :] = high.transpose(1, 2)
    return out.view(-1, 1)


@contextlib.contextmanager
def dequantise_once() -> Iterator[None]:
    """While active, every call of a split layer takes the dequantise path (a prompt's last
    chunk may have only a few tokens) and the layer keeps the float weight of its first call
    for the next ones; all are dropped at exit. For the chunks of a long prompt run through
    one layer after another: one dequantisation per layer, not per chunk."""
    token = _held.set({})
    try:
        yield
    finally:
        _held.reset(token)


def holding() -> bool:
    """Whether a prompt is running under :func:`dequantise_once` (every call of a split
    layer then takes the dequantise path, however few rows a chunk has)."""
    return _held.get() is not None


def _dequantised(self: Any) -> Any:
    """The layer's float weight, by bitsandbytes' own dequantisation (as its ``gemm_4bit``)."""
    from bitsandbytes.functional import dequantize_4bit

    weight = unpack(self.packed_weight, tuple(self.dense_state.shape))
    return dequantize_4bit(weight, self.dense_state).to(self.compute_dtype)


def dense_weight(module: Any) -> Any:
    """A split layer's float weight while :func:`dequantise_once` is active (dequantised at
    the first call, then held); None for other modules, or outside it."""
    held = _held.get()
    if held is None or not hasattr(module, "dense_state") or module.training:
        return None
    weight = held.get(id(module))
    if weight is None:
        weight = held[id(module)] = _dequantised(module)
    return weight


def _kernel() -> Any:
    """bitsandbytes' nf4 x bf16 CPU kernel (a ctypes function), or None where it is absent."""
    from bitsandbytes.cextension import lib

    return getattr(lib, "gemv_4bit_inference_cpu_nf4_bf16", None)


def packed_product(x: Any, weight: Any, state: Any, bias: Any = None) -> Any:
    """``x`` (in the layer's compute dtype, few rows) times a packed 4-bit ``weight``
    (``split_paths``'s packed path), in ``x``'s dtype: bitsandbytes' CPU kernel called
    directly where the call is one it would make (float32 activations, nf4, single-level
    bf16 scales, no bias, no gradients), else ``bnb.matmul_4bit``."""
    import ctypes

    import bitsandbytes as bnb
    import torch
    from bitsandbytes.functional import get_ptr

    kernel = _kernel()
    direct = (
        kernel is not None
        and bias is None
        and not x.requires_grad
        and x.dtype == torch.float32
        and state.quant_type == "nf4"
        and not state.nested
        and state.absmax.dtype == torch.bfloat16
        and state.absmax.is_contiguous()
        and weight.dtype == torch.uint8
        and weight.is_contiguous()
        and x.shape[-1] == state.shape[1]
    )
    if not direct:
        return bnb.matmul_4bit(x, weight, quant_state=state, bias=bias).to(x.dtype)
    n, k = state.shape
    a = x.reshape(-1, k).to(torch.bfloat16).contiguous()
    out = torch.empty(a.shape[0], n, dtype=torch.bfloat16)
    kernel(
        ctypes.c_int64(a.shape[0]), ctypes.c_int64(n), ctypes.c_int64(k), get_ptr(a),
        get_ptr(weight), get_ptr(state.absmax), get_ptr(out), ctypes.c_int64(state.blocksize),
        ctypes.c_int64(a.stride(0)), ctypes.c_int64(out.stride(0)),
    )  # fmt: skip
    return out.to(x.dtype).view(*x.shape[:-1], n)


def _forward(self: Any, x: Any) -> Any:
    import bitsandbytes as bnb
    import torch.nn.functional as F

    rows = x.numel() // x.shape[-1] if x.numel() else 0
    bias = None if self.bias is None else self.bias.to(self.compute_dtype)
    weight = None if x.requires_grad else dense_weight(self)
    if weight is not None:
        return F.linear(x.to(self.compute_dtype), weight, bias).to(x.dtype)
    if self.training or x.requires_grad or rows > self.max_packed_rows:
        weight = unpack(self.packed_weight, tuple(self.dense_state.shape))
        state = self.dense_state  # dequantise with the original float32 block scales
        out = bnb.matmul_4bit(x.to(self.compute_dtype), weight, quant_state=state, bias=bias)
        return out.to(x.dtype)
    out = packed_product(x.to(self.compute_dtype), self.packed_weight, self.packed_state, bias)
    return out.to(x.dtype)


def packable(module: Any) -> bool:
    """Whether bitsandbytes' CPU kernel can take this layer (its packing's shape rules)."""
    state = module.weight.quant_state
    out_features, in_features = state.shape
    return out_features % BLOCK_N == 0 and in_features % state.blocksize == 0


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
        module.support_avx512bf16_for_cpu = False  # bitsandbytes must not repack it again
        if not kernel or not packable(module):
            continue
        dense = module.weight.quant_state
        packed, state = _convert_weight_packed_for_cpu(module.weight.data, copy.deepcopy(dense))
        # The packed weight replaces the original, in bitsandbytes' own packing format, which
        # its forward understands. Taking a state dict makes bitsandbytes unpack the module's
        # weight and rewrite its state in place (and, for scales that are not double-quantised,
        # leave them in the packed layout), so the paths keep their own references.
        module.weight.data, module.weight.quant_state = packed, copy.copy(state)
        module.packed_weight, module.packed_state, module.dense_state = packed, state, dense
        module.max_packed_rows = max_packed_rows
        module.forward = types.MethodType(_forward, module)
        split += 1
    logger.info("nf4 on CPU: %d layers packed, with a dequantise path for prompts", split)
    return split
