"""Decode steps of a CPU nf4 model with a LoRA adapter: q/k/v and gate/up each as one packed
call plus one LoRA pair, the same outputs as the layers one by one, one copy of the weights."""

from __future__ import annotations

import pytest
import torch
from bitsandbytes.functional import has_avx512bf16

from product_descgen.llm import nf4_cpu, nf4_fused
from product_descgen.llm.decoding import Decoder
from product_descgen.llm.hf_backend import load_model
from product_descgen.llm.nf4_cpu import MAX_PACKED_ROWS

pytestmark = pytest.mark.skipif(
    not has_avx512bf16(), reason="bitsandbytes' packed CPU kernel needs AVX512-BF16"
)


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter on q/v with random (non-zero) B, trained-adapter-like, on the nf4 base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_compute_dtype=torch.float32)  # fmt: skip
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), quantization_config=config)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)  # fmt: skip
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, lora).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def fused(tiny_model_dir, adapter_dir):
    return load_model(str(tiny_model_dir), "float32", "nf4", adapter=adapter_dir)


@pytest.fixture(scope="module")
def unfused(tiny_model_dir, adapter_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nf4_fused, "fuse_projections", lambda model: 0)
        return load_model(str(tiny_model_dir), "float32", "nf4", adapter=adapter_dir)


def attention(model, layer=0):
    return model.base_model.model.model.layers[layer].self_attn


def mlp(model, layer=0):
    return model.base_model.model.model.layers[layer].mlp


def outputs(module, names, x):
    with torch.inference_mode():
        return [getattr(module, name)(x) for name in names]


@pytest.mark.parametrize("rows", [1, 5, MAX_PACKED_ROWS])
def test_decode_rows_get_each_layers_own_output(fused, unfused, rows):
    x = torch.randn(rows, 1, 64)
    names = ("q_proj", "k_proj", "v_proj")
    got, expected = outputs(attention(fused), names, x), outputs(attention(unfused), names, x)
    assert torch.equal(got[1], expected[1])  # no adapter: the same kernel, the same numbers
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)  # LoRA summed in another order
    got, expected = (
        outputs(mlp(fused), ("gate_proj", "up_proj"), x),
        outputs(mlp(unfused), ("gate_proj", "up_proj"), x),
    )
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))


def test_prompt_rows_take_each_layers_own_path(fused, unfused):
    x = torch.randn(2, MAX_PACKED_ROWS, 64)  # more rows than the packed kernel takes
    names = ("q_proj", "k_proj", "v_proj")
    got, expected = outputs(attention(fused), names, x), outputs(attention(unfused), names, x)
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))


def test_a_decode_step_makes_fewer_kernel_calls(fused, unfused, monkeypatch):
    calls = []
    product = nf4_cpu.packed_product
    monkeypatch.setattr(nf4_cpu, "packed_product", lambda *a: calls.append(1) or product(*a))
    ids = torch.tensor([[5, 6], [7, 8]])
    with torch.inference_mode():
        expected = unfused(input_ids=ids).logits
        unfused_calls, calls[:] = len(calls), []
        got = fused(input_ids=ids).logits
    assert unfused_calls == 2 * 7  # two layers: q, k, v, o, gate, up, down
    assert len(calls) == 2 * 4  # qkv, o, gate/up, down
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_one_copy_of_the_weights(fused):
    attn = attention(fused)
    group = attn.q_proj.nf4_group
    stacked = group.weight.untyped_storage().data_ptr()
    for name in ("q_proj", "k_proj", "v_proj"):
        base = getattr(attn, name)
        base = getattr(base, "base_layer", base)
        assert base.packed_weight.untyped_storage().data_ptr() == stacked
        assert base.weight.data.untyped_storage().data_ptr() == stacked
    assert group.weight.shape[0] == sum(group.sizes) == 64 + 32 + 32


def test_greedy_decoding_is_unchanged(fused, unfused, tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = [tokenizer(t)["input_ids"] for t in ("A steel lamp", "Soft wool socks for", "Tea")]
    for model in (fused, unfused):
        model.generation_config.eos_token_id = len(tokenizer) + 1  # full-length outputs
    got = Decoder(fused, None, max_new_tokens=10).decode(prompts, tokenizer.pad_token_id)
    expected = Decoder(unfused, None, max_new_tokens=10).decode(prompts, tokenizer.pad_token_id)
    assert [g.tokens for g in got] == [e.tokens for e in expected]


def test_a_disabled_adapter_is_respected(fused, unfused):
    x = torch.randn(3, 1, 64)
    with fused.disable_adapter(), unfused.disable_adapter():
        got = outputs(attention(fused), ("q_proj",), x)[0]
        expected = outputs(attention(unfused), ("q_proj",), x)[0]
    assert torch.equal(got, expected)  # the base layer alone, through its own path
    with_adapter = outputs(attention(fused), ("q_proj",), x)[0]
    assert not torch.allclose(got, with_adapter)


def test_the_state_dict_is_the_models_own(fused, unfused):
    assert fused.state_dict().keys() == unfused.state_dict().keys()
    x = torch.randn(2, 1, 64)  # still right after bitsandbytes unpacked weights for it
    got = outputs(attention(fused), ("q_proj", "v_proj"), x)
    expected = outputs(attention(unfused), ("q_proj", "v_proj"), x)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
