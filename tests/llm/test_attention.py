"""Prompt chunks of grouped-query models read the shared key/value heads in place, with
transformers' numbers; everything else is transformers' sdpa attention."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from product_descgen.llm import attention
from tests.llm.test_decoding import tiny


class Heads(torch.nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.num_key_value_groups, self.is_causal = groups, True


def inputs(queries: int, heads: int = 6, kv_heads: int = 2, masked: bool = True):
    generator = torch.Generator().manual_seed(queries)
    q = torch.randn(3, heads, queries, 16, generator=generator)
    k, v = (torch.randn(3, kv_heads, 20, 16, generator=generator) for _ in range(2))
    mask = torch.zeros(3, 1, queries, 20)
    mask[0, :, :, :5] = torch.finfo(torch.float32).min  # a padded row
    return q, k, v, mask if masked else None


@pytest.mark.parametrize(
    ("queries", "heads", "kv_heads", "masked", "transformers_copies", "copies_too"),
    [
        (7, 6, 2, True, True, False),  # a masked prompt chunk: read in place here
        (7, 6, 1, True, True, True),  # one shared head (multi-query): transformers' path
        (1, 6, 2, True, False, False),  # a decode step: transformers packs the query heads
        (7, 6, 6, True, False, False),  # no shared heads
        (7, 6, 2, False, False, False),  # no mask: transformers itself passes enable_gqa
    ],
)
def test_same_numbers_as_transformers(
    queries, heads, kv_heads, masked, transformers_copies, copies_too, monkeypatch
):
    q, k, v, mask = inputs(queries, heads, kv_heads, masked)
    module = Heads(heads // kv_heads)
    copies = []
    monkeypatch.setattr(
        "transformers.integrations.sdpa_attention.repeat_kv",
        lambda x, n: copies.append(n) or x.repeat_interleave(n, dim=1),
    )
    expected, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.25)
    assert bool(copies) == transformers_copies
    copies.clear()
    got, _ = attention.sdpa_gqa_prompts(module, q, k, v, mask, scaling=0.25)
    assert torch.equal(got, expected)
    assert bool(copies) == copies_too


def test_set_on_models_that_use_sdpa():
    model = tiny("llama")
    assert model.config._attn_implementation == "sdpa"
    assert attention.use(model)
    assert model.config._attn_implementation == attention.NAME
    eager = tiny("llama")
    eager.set_attn_implementation("eager")
    assert not attention.use(eager)
    assert eager.config._attn_implementation == "eager"
