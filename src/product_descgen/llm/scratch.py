"""Buffers reused by every chunk and layer of one prompt pass, and linear layers computed into
them.

A prompt pass allocates the same activations again for every chunk of every layer (SmolLM2's
12 demo prompts: about 64 KB per token per layer, 4 GB in all). The speed workers hand large
freed blocks back to the OS so that peaks count live memory (``evaluation/speed.py``), and
then each new block is paged in as it is first written: about 1.3 million page faults, a
quarter of the student's prompt time. Writing into the same few buffers pages them in once.

:func:`linear_into` computes a projection into a given buffer with the same operations as the
module's own forward, so the numbers are the same: ``nn.Linear``, a split nf4 layer's held
float weight (``nf4_cpu.dense_weight``), and a peft LoRA layer over either (one active plain
adapter, not merged). Anything else runs its own forward and is copied in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from product_descgen.llm import nf4_cpu


class Scratch:
    """Named float buffers of at most ``rows`` rows each, allocated at first use and handed
    out as contiguous views."""

    def __init__(self, rows: int, dtype: torch.dtype = torch.float32) -> None:
        self.rows, self.dtype = rows, dtype
        self._store: dict[str, torch.Tensor] = {}

    def get(self, name: str, *shape: int) -> torch.Tensor:
        """A ``shape`` view of buffer ``name`` (``shape[0]`` rows at most ``rows``)."""
        if shape[0] > self.rows:
            raise ValueError(f"{shape[0]} rows in a scratch of {self.rows}")
        width = math.prod(shape[1:])
        buffer = self._store.get(name)
        if buffer is None or buffer.numel() < self.rows * width:
            buffer = self._store[name] = torch.empty(self.rows * width, dtype=self.dtype)
        return buffer[: math.prod(shape)].view(shape)


def float_weight(module: Any) -> torch.Tensor | None:
    """The float weight ``module`` multiplies by, when it is a plain linear layer or a split
    nf4 layer inside ``nf4_cpu.dequantise_once``."""
    if type(module) is torch.nn.Linear:  # a plain weight (not, e.g., torchao's int8 tensor)
        weight = module.weight
        return weight if type(weight.data) is torch.Tensor else None
    return nf4_cpu.dense_weight(module)


def _lora(module: Any) -> tuple[Any, Any, Any, float] | None:
    """``(base layer, lora_A, lora_B, scaling)`` of a peft LoRA layer computed as
    ``base(x) + lora_B(lora_A(x)) * scaling`` (eval, one plain adapter, not merged)."""
    from peft.tuners.lora import LoraLayer

    if not isinstance(module, LoraLayer) or module.merged or module.disable_adapters:
        return None
    active = [a for a in module.active_adapters if a in module.lora_A]
    if len(active) != 1 or active[0] in getattr(module, "lora_variant", {}):
        return None
    name = active[0]
    dropout = module.lora_dropout[name]
    if module.training or not isinstance(dropout, torch.nn.Dropout | torch.nn.Identity):
        return None
    lora_a, lora_b = module.lora_A[name], module.lora_B[name]
    if lora_a.bias is not None or lora_b.bias is not None:
        return None
    return module.base_layer, lora_a, lora_b, module.scaling[name]


def linear_into(
    module: Any, x: torch.Tensor, out: torch.Tensor, spare: Callable[[], torch.Tensor]
) -> None:
    """``out[:] = module(x)`` for 2-D ``x``, without new large tensors where the module is
    one :func:`linear_into` knows (``spare()``: a buffer shaped like ``out``, for a LoRA
    layer's term)."""
    lora = _lora(module)
    base = lora[0] if lora else module
    weight = float_weight(base)
    if weight is None or getattr(base, "bias", None) is not None or x.dtype != weight.dtype:
        out.copy_(module(x))
        return
    torch.matmul(x, weight.t(), out=out)
    if lora:
        _, lora_a, lora_b, scaling = lora
        term = torch.matmul(lora_a(x), lora_b.weight.t(), out=spare())
        out.add_(term.mul_(scaling))
