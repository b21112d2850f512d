"""Fewer, larger kernel calls in the decode steps of a CPU nf4 model (after
:func:`product_descgen.llm.nf4_cpu.split_paths`).

In a decoder layer, attention's q/k/v projections read the same input, and so do the MLP's
gate/up. Each group becomes one call of bitsandbytes' packed 4-bit kernel over the rows of
its weights stacked (the kernel computes each output row alone, so the outputs are the same
numbers), and the group's LoRA adapters two small matmuls: the inputs times every part's
stacked ``A``, then times the ``B`` blocks, each placed at its part's output columns. A
student decode step makes 120 kernel calls instead of 210, and 60 LoRA matmuls instead of
120; at a dozen rows each call's fixed cost is a large share (q/k/v at 12 rows, 2 threads:
235 us as three calls, 164 us as one; docs/benchmarks.md).

The first projection a layer calls computes the whole group and keeps the outputs until
every part has taken its own (the same input tensor, by identity: models call the parts
one after another on one hidden state). The stacked weight is the only copy: each layer's
packed weight becomes a view of it, so prompts (more rows than ``max_packed_rows``) still go
through each layer's own dequantise path, unchanged. Training, gradients, a disabled or
merged adapter, or a change of active adapters after fusing send a call to the layer's own
forward.
"""

from __future__ import annotations

import copy
import logging
import types
from collections.abc import Sequence
from typing import Any

from product_descgen.llm import nf4_cpu

logger = logging.getLogger(__name__)

GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def _lora_parts(module: Any) -> tuple[Any, list[tuple[Any, Any, float]]] | None:
    """(base nf4 layer, [(A, B, scaling)]) of a projection, plain LoRA only; None if the
    layer has anything else (DoRA and other variants, LoRA bias, merged weights)."""
    base = getattr(module, "base_layer", None)
    if base is None:
        return module, []
    if module.merged or module.disable_adapters or getattr(module, "lora_variant", {}):
        return None
    adapters = []
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        a, b = module.lora_A[name], module.lora_B[name]
        if a.bias is not None or b.bias is not None:
            return None
        adapters.append((a.weight, b.weight, float(module.scaling[name])))
    return base, adapters


def _adapter_state(module: Any) -> tuple:
    if getattr(module, "base_layer", None) is None:
        return ()
    return (tuple(module.active_adapters), module.merged, module.disable_adapters)


class FusedGroup:
    """One packed 4-bit call (plus one LoRA pair) for projections that share their input."""

    def __init__(self, parts: Sequence[Any], bases: Sequence[Any], adapters: list) -> None:
        import torch

        self.parts, self.sizes = list(parts), [b.packed_weight.shape[0] for b in bases]
        self.forwards = [part.forward for part in parts]  # each layer's own path
        self.states = [_adapter_state(part) for part in parts]
        self.max_rows = min(b.max_packed_rows for b in bases)
        self.compute_dtype = bases[0].compute_dtype
        self.weight = torch.cat([b.packed_weight for b in bases])
        self.state = copy.copy(bases[0].packed_state)
        self.state.absmax = torch.cat([b.packed_state.absmax for b in bases], dim=1).contiguous()
        self.state.shape = torch.Size((self.weight.shape[0], bases[0].packed_state.shape[1]))
        start = 0
        for base, size in zip(bases, self.sizes, strict=True):  # views: one copy of the weights
            view = self.weight[start : start + size]
            if base.weight.data.data_ptr() == base.packed_weight.data_ptr():
                base.weight.data = view
            base.packed_weight, start = view, start + size
        self.lora_a = self.lora_b = None
        if any(adapters):
            self._stack_adapters(adapters)
        self._input: Any = None
        self._outputs: tuple = ()
        self._taken = 0

    def _stack_adapters(self, adapters: list) -> None:
        """``A`` of every part's adapters stacked; ``B`` (times its scaling) at its part's
        output columns and its adapter's rank columns, zeros elsewhere."""
        import torch

        with torch.no_grad():
            blocks = [(i, a, b * s) for i, found in enumerate(adapters) for a, b, s in found]
            self.lora_a = torch.cat([a for _, a, _ in blocks]).clone()
            self.lora_b = torch.zeros(
                self.state.shape[0], self.lora_a.shape[0], dtype=self.lora_a.dtype
            )
            rank, offsets = 0, [sum(self.sizes[:i]) for i in range(len(self.sizes))]
            for i, _, b in blocks:
                self.lora_b[offsets[i] : offsets[i] + b.shape[0], rank : rank + b.shape[1]] = b
                rank += b.shape[1]

    def holds(self, x: Any) -> bool:
        """Whether the group has computed ``x`` and some parts have not taken theirs yet."""
        return self._input is x

    def serves(self, x: Any, part: Any) -> bool:
        """Whether a call on ``x`` takes the fused path (else the layer's own forward)."""
        rows = x.numel() // x.shape[-1] if x.numel() else 0
        return (
            0 < rows <= self.max_rows
            and not nf4_cpu.holding()  # a prompt's chunks: each layer's dequantise path
            and not x.requires_grad
            and not part.training
            and all(_adapter_state(p) == s for p, s in zip(self.parts, self.states, strict=True))
        )

    def output(self, x: Any, index: int) -> Any:
        import torch.nn.functional as F

        if self._input is not x:
            out = nf4_cpu.packed_product(x.to(self.compute_dtype), self.weight, self.state)
            out = out.to(x.dtype)
            if self.lora_a is not None:
                h = F.linear(x.to(self.lora_a.dtype), self.lora_a)
                out = out + F.linear(h, self.lora_b).to(out.dtype)
            self._input, self._outputs, self._taken = x, out.split(self.sizes, dim=-1), 0
        result = self._outputs[index]
        self._taken += 1
        if self._taken == len(self.parts):  # every part has its output: drop the references
            self._input, self._outputs = None, ()
        return result


def _part_forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    group, index = self.nf4_group, self.nf4_group_index
    if not args and not kwargs and (group.holds(x) or group.serves(x, self)):
        return group.output(x, index)
    return group.forwards[index](x, *args, **kwargs)


def fuse_projections(model: Any) -> int:
    """Fuse every q/k/v and gate/up group of ``model`` whose layers all went through
    ``split_paths`` with matching shapes; the number of groups fused. Others stay as they are."""
    import torch

    fused = 0
    for parent in model.modules():
        for names in GROUPS:
            parts = [getattr(parent, name, None) for name in names]
            if any(part is None or hasattr(part, "nf4_group") for part in parts):
                continue
            found = [_lora_parts(part) for part in parts]
            if any(f is None for f in found):
                continue
            bases = [base for base, _ in found]
            if not all(hasattr(b, "packed_weight") and b.bias is None for b in bases):
                continue
            first = bases[0].packed_state
            if any(
                b.packed_state.shape[1] != first.shape[1]
                or b.packed_state.blocksize != first.blocksize
                or not torch.equal(b.packed_state.code, first.code)
                or b.compute_dtype != bases[0].compute_dtype
                for b in bases
            ):
                continue
            group = FusedGroup(parts, bases, [adapters for _, adapters in found])
            for index, part in enumerate(parts):
                part.nf4_group, part.nf4_group_index = group, index
                part.forward = types.MethodType(_part_forward, part)
            fused += 1
    logger.info("nf4 on CPU: %d projection groups fused for decode steps", fused)
    return fused
