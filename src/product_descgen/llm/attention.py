"""Attention for CPU serving: transformers' ``sdpa``, except for prompt chunks of
grouped-query models, which go to PyTorch's kernel with ``enable_gqa``.

For several queries and a mask, transformers copies every key/value head once per query head
(``repeat_kv``) before PyTorch's attention; the kernel can read the shared heads itself, with
the same numbers (tested). On a 12-row, 85-column chunk of the demo student (9 query heads on
3 key/value heads) that took attention from 8.4 to 3.4 ms, without the copies' memory. Decode
steps (one query) keep transformers' path, which is faster there (0.30 against 0.45 ms); the
models ``lean.py`` serves take its own call for them (a row's grouped query heads as the
queries of their shared head, no copies: faster than both). So
do models with a single key/value head (the default teacher, Gemma 3 270M: 4 query heads on
one of dimension 256), where the copy is cheap next to the product: the kernel was no faster on
its chunks (``benchmarks/attention_gqa.py``) and its whole pipeline 3% slower at batch 32
(``benchmarks/teacher_throughput.py --sizes 32 --paths pipeline``, two pairs of runs).

Registered with transformers' ``AttentionInterface`` and set on a model by :func:`use`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "sdpa_gqa_prompts"


def sdpa_gqa_prompts(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' sdpa attention, with the shared key/value heads read in place for a
    masked chunk of several queries."""
    plain = (
        getattr(module, "num_key_value_groups", 1) == 1
        or key.shape[1] == 1  # one shared head (multi-query): measured no faster, see above
        or query.shape[2] == 1
        or attention_mask is None
        or dropout
        or any(kwargs.get(k) for k in ("position_bias", "softcap", "output_attentions"))
    )
    if plain:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, scale=scaling, enable_gqa=True
    )
    return out.transpose(1, 2).contiguous(), None


def use(model: Any) -> bool:
    """Serve ``model`` with this attention if it uses transformers' sdpa; whether it does."""
    AttentionInterface.register(NAME, sdpa_gqa_prompts)
    if model.config._attn_implementation not in ("sdpa", NAME):
        return False
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
