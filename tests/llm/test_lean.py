"""The lean forward against the library's, for Llama and Gemma 3: plain, with a LoRA adapter,
and (Llama, the student) on the nf4 serving path (packed kernels and fused projection
groups). Without padding the logits and cache are the library's bit for bit; with padding
(skipped: prompts' real tokens are packed) they agree to float rounding and padding's keys
and values are zeros."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from product_descgen.llm import cascade, lean
from product_descgen.llm.decoding import Decoder
from tests.llm.test_decoding import PAD, prompts, tiny


def lora(model: torch.nn.Module) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(3)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"],
                        init_lora_weights=False)  # fmt: skip
    return get_peft_model(model, config).eval()


def run(decoder: Decoder, rows: list[list[int]], steps: int) -> list[torch.Tensor]:
    """Logits of left-padded prompts (prefilled in chunks of about 8 tokens) and of ``steps``
    greedy decode steps, then the cache's keys and values."""
    with torch.inference_mode():
        cache, ids, mask, positions, last = decoder._prefill(rows, PAD, [], None, steps)
        logits = [last]
        for _ in range(steps):
            ids = torch.cat([ids, logits[-1].argmax(-1, keepdim=True)], dim=1)
            mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
            logits.append(decoder._forward(ids[:, -1:], mask, positions, cache))
    return logits + [t.clone() for layer in cache.layers for t in (layer.keys, layer.values)]


def assert_same_as_library(model: torch.nn.Module, steps: int = 4) -> None:
    ours = Decoder(model, None, max_new_tokens=steps, prefill_tokens=8)
    library = Decoder(model, None, max_new_tokens=steps, prefill_tokens=8)
    assert ours.lean
    ours.screen = None  # logits, not the output layer's input (screen.py)
    library.lean = False
    even = [row[:4] for row in prompts()]  # no padding; chunks of 8 tokens (2 columns)
    got, expected = run(ours, even, steps), run(library, even, steps)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)
    rows = prompts()
    got, expected = run(ours, rows, steps), run(library, rows, steps)
    width = max(len(r) for r in rows)
    padding = torch.tensor([[c < width - len(r) for c in range(width + steps)] for r in rows])
    for g, e in zip(got, expected, strict=True):
        if g.dim() == 4:  # keys or values [rows, heads, columns, dim]
            assert not g.transpose(1, 2)[padding].any()
            g, e = g.transpose(1, 2)[~padding], e.transpose(1, 2)[~padding]
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_logits_and_cache_equal_the_librarys(kind):
    # the tiny Gemma 3's 6-token sliding window is shorter than the prompts: its masks count
    assert_same_as_library(tiny(kind), steps=8)


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_with_a_lora_adapter(kind):
    assert_same_as_library(lora(tiny(kind)))


def test_on_the_nf4_serving_path_with_fused_projections(tiny_model_dir, monkeypatch):
    from bitsandbytes.functional import has_avx512bf16

    from product_descgen.llm import nf4_cpu
    from product_descgen.llm.hf_backend import load_model

    if not has_avx512bf16():
        pytest.skip("bitsandbytes' packed CPU kernel needs AVX512-BF16")
    model = load_model(str(tiny_model_dir), "float32", "nf4")
    split = [m for m in model.modules() if hasattr(m, "max_packed_rows")]
    for module in split:  # 4 rows take the packed kernel, prompt chunks (8) the dense path
        module.max_packed_rows = 4
        if hasattr(module, "nf4_group"):  # o_proj and down_proj are in no group
            module.nf4_group.max_rows = 4
    dequantised = []
    original = nf4_cpu._dequantised
    monkeypatch.setattr(nf4_cpu, "_dequantised", lambda m: dequantised.append(m) or original(m))
    assert_same_as_library(model, steps=3)
    assert len(dequantised) == 2 * len(split)  # 2 prompts of several chunks: each weight once
    assert_same_as_library(lora(model), steps=3)


def test_other_models_keep_the_librarys_forward():
    assert lean.supports(tiny("gemma3"))
    assert not lean.supports(tiny("gemma3").to(torch.bfloat16))
    capped = tiny("gemma3")
    capped.config.final_logit_softcapping = 30.0  # Gemma 2's, not computed here
    assert not lean.supports(capped)
    assert not lean.supports(tiny("llama").to(torch.bfloat16))
    assert not lean.supports(tiny("llama").train())
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4, pretraining_tp=2)  # fmt: skip
    assert not lean.supports(LlamaForCausalLM(config).eval())


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_attention_reads_a_shared_prefix_once(kind, monkeypatch):
    """Prompt chunks and decode steps over a cached prefix (longer than the tiny Gemma 3's
    sliding window) give the logits and cache of attention over whole rows, up to float
    rounding."""
    model = tiny(kind)
    prefix = list(range(30, 50))
    rows = prompts()

    def steps(on: bool) -> list[torch.Tensor]:
        monkeypatch.setattr(lean, "CASCADE", on)
        decoder = Decoder(model, None, max_new_tokens=6, prefill_tokens=8)  # several chunks
        decoder.screen = None  # logits, not the output layer's input
        with torch.inference_mode():
            kv = decoder.prefix_cache(prefix)
            cache, ids, mask, positions, last = decoder._prefill(rows, PAD, prefix, kv, 6)
            logits = [last]
            for _ in range(6):
                ids = torch.cat([ids, logits[-1].argmax(-1, keepdim=True)], dim=1)
                mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
                positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
                logits.append(decoder._forward(ids[:, -1:], mask, positions, cache))
        real = mask.bool()[:, None, :, None]  # padding's keys and values are left as zeros
        return logits + [t * real for layer in cache.layers for t in (layer.keys, layer.values)]

    calls = {"decode_step": [], "prompt_chunk": []}
    for name, record in calls.items():
        function = getattr(cascade, name)
        monkeypatch.setattr(cascade, name, lambda *a, f=function, r=record: r.append(1) or f(*a))
    got, expected = steps(True), steps(False)
    layers = model.config.num_hidden_layers
    assert len(calls["decode_step"]) == 6 * layers
    assert len(calls["prompt_chunk"]) > layers  # chunks after the first: no chunk left out
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)
