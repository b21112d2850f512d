"""The lean Llama forward gives the library's logits and cache bit for bit: plain, with a LoRA
adapter, and on the nf4 serving path (packed kernels and fused projection groups)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from product_descgen.llm import llama_lean
from product_descgen.llm.decoding import Decoder, new_cache
from tests.llm.test_decoding import PAD, prompts, tiny


def lora(model: torch.nn.Module) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(3)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"],
                        init_lora_weights=False)  # fmt: skip
    return get_peft_model(model, config).eval()


def run(decoder: Decoder, rows: list[list[int]], steps: int) -> tuple[list, list]:
    """Logits of a left-padded prompt (prefilled in two chunks) and of ``steps`` greedy
    decode steps, and the cache's keys after them."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[PAD] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = new_cache(decoder.model, width + steps)
    logits = []
    with torch.inference_mode():
        decoder._forward(ids[:, :5], mask[:, :5], positions[:, :5], cache, False)
        logits.append(decoder._forward(ids[:, 5:], mask, positions, cache))
        for _ in range(steps):
            ids = torch.cat([ids, logits[-1].argmax(-1, keepdim=True)], dim=1)
            mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
            logits.append(decoder._forward(ids[:, -1:], mask, positions, cache))
    return logits, [layer.keys.clone() for layer in cache.layers]


def assert_same_as_library(model: torch.nn.Module, steps: int = 4) -> None:
    lean = Decoder(model, None, max_new_tokens=steps)
    library = Decoder(model, None, max_new_tokens=steps)
    assert lean.lean
    library.lean = False
    got, expected = run(lean, prompts(), steps), run(library, prompts(), steps)
    for g, e in zip(got[0] + got[1], expected[0] + expected[1], strict=True):
        assert torch.equal(g, e)


def test_logits_and_cache_equal_the_librarys():
    assert_same_as_library(tiny("llama"))


def test_with_a_lora_adapter():
    assert_same_as_library(lora(tiny("llama")))


def test_on_the_nf4_serving_path_with_fused_projections(tiny_model_dir):
    from bitsandbytes.functional import has_avx512bf16

    from product_descgen.llm.hf_backend import load_model

    if not has_avx512bf16():
        pytest.skip("bitsandbytes' packed CPU kernel needs AVX512-BF16")
    model = load_model(str(tiny_model_dir), "float32", "nf4")
    assert any(hasattr(m, "nf4_group") for m in model.modules())
    assert_same_as_library(model, steps=3)


def test_other_models_keep_the_librarys_forward():
    assert not llama_lean.supports(tiny("gemma3"))
    assert not llama_lean.supports(tiny("llama").to(torch.bfloat16))
    assert not llama_lean.supports(tiny("llama").train())
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4, pretraining_tp=2)  # fmt: skip
    assert not llama_lean.supports(LlamaForCausalLM(config).eval())
