"""A Llama forward pass for the decode loop with fewer operations and fewer fresh tensors.

transformers' Llama layers are written for every use (training, output capture, hooks, any
cache); a serving step needs one path. This walks the same modules (so LoRA wrappers, nf4
layers and fused projection groups work as they do there) and does the same arithmetic in
the same order, with in-place updates where the library allocates: the residual adds, the
norm's scaling, rotary embeddings and the MLP's product. The logits are the library's, bit
for bit (tested). A prompt's chunks run layer by layer, so an nf4 layer dequantises its weight
once per prompt; the price is every chunk's attention mask held at once (about 2 MB for the
12 demo prompts; rows x chunk x columns floats each). Measured alone, the demo student's 12
prompts went from 5.8 to 4.2 s (with ``attention.py``) and a 12-row decode step from 70.5 to
66.9 ms; inside the speed node the gain did not show (docs/benchmarks.md, "2026-11-27").

Only plain Llama models take it (``supports``); anything else keeps the library's forward.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from product_descgen.llm import nf4_cpu


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports(model: Any) -> bool:
    """Whether ``model`` (optionally behind a peft wrapper) is a Llama this path computes
    exactly as transformers does."""
    base = _base(model)
    config = base.config
    return (
        config.model_type == "llama"
        and type(base).__name__ == "LlamaForCausalLM"
        and getattr(config, "pretraining_tp", 1) == 1
        and config._attn_implementation in ALL_ATTENTION_FUNCTIONS
        and base.dtype == torch.float32
        and not base.training
    )


def rms_norm(norm: Any, x: torch.Tensor) -> torch.Tensor:
    """``LlamaRMSNorm`` (float32 models): two new tensors instead of three."""
    variance = x.pow(2).mean(-1, keepdim=True)
    variance.add_(norm.variance_epsilon).rsqrt_()
    out = x * variance
    return out.mul_(norm.weight)


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin``: two new tensors instead of five."""
    half = x.shape[-1] // 2
    out = x * cos
    turned = torch.empty_like(out)
    torch.neg(x[..., half:], out=turned[..., :half])
    turned[..., half:] = x[..., :half]
    return out.add_(turned.mul_(sin))


Span = tuple[int, int, "torch.Tensor | dict[str, torch.Tensor]"]  # columns [start, end), masks


def forward(
    model: Any,
    ids: torch.Tensor,
    position_ids: torch.Tensor,
    cache: Any,
    spans: list[Span],
    logits: bool = True,
) -> torch.Tensor | None:
    """The new columns ``ids`` through the model, keys and values into ``cache`` (one layer
    object per decoder layer); the last column's float logits, or None (``logits=False``).
    ``spans`` cut the columns into chunks, each with its attention masks: every layer runs
    them all, in order, before the next layer starts, so activations are one chunk's while an
    nf4 layer dequantises its weight once per prompt, not once per chunk."""
    base = _base(model)
    config, llama = base.config, base.model
    attend = ALL_ATTENTION_FUNCTIONS[config._attn_implementation]
    layer_types = getattr(config, "layer_types", None)
    rows = ids.shape[0]
    hidden = llama.embed_tokens(ids)
    cos, sin = llama.rotary_emb(hidden, position_ids)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    for index, layer in enumerate(llama.layers[: config.num_hidden_layers]):
        attention, mlp, kv = layer.self_attn, layer.mlp, cache.layers[index]
        with nf4_cpu.dequantise_once() if len(spans) > 1 else contextlib.nullcontext():
            for start, end, masks in spans:
                mask = masks[layer_types[index]] if isinstance(masks, dict) else masks
                part = hidden[:, start:end]  # a view: the residual adds write into `hidden`
                x = rms_norm(layer.input_layernorm, part)
                shape = (rows, end - start, -1, attention.head_dim)
                query = attention.q_proj(x).view(shape).transpose(1, 2)
                key = attention.k_proj(x).view(shape).transpose(1, 2)
                value = attention.v_proj(x).view(shape).transpose(1, 2)
                angle = cos[:, :, start:end], sin[:, :, start:end]
                query, key = rotary(query, *angle), rotary(key, *angle)
                key, value = kv.update(key, value)
                out, _ = attend(
                    attention, query, key, value, mask, dropout=0.0, scaling=attention.scaling
                )
                part.add_(attention.o_proj(out.reshape(rows, end - start, -1)))
                x = rms_norm(layer.post_attention_layernorm, part)
                gated = mlp.act_fn(mlp.gate_proj(x))
                part.add_(mlp.down_proj(gated.mul_(mlp.up_proj(x))))
    if not logits:
        return None
    return base.lm_head(rms_norm(llama.norm, hidden[:, -1:]))[:, -1, :].float()
