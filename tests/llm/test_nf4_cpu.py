"""nf4 on CPU: each 4-bit layer keeps one packed copy and serves few rows through the packed
kernel, many through dequantise + float32 matmul (the numerics QLoRA trained with)."""

from __future__ import annotations

import copy

import bitsandbytes as bnb
import pytest
import torch
from bitsandbytes.functional import (
    _convert_weight_packed_for_cpu,
    dequantize_4bit,
    has_avx512bf16,
)

from product_descgen.llm.decoding import Decoder
from product_descgen.llm.hf_backend import load_model
from product_descgen.llm.nf4_cpu import MAX_PACKED_ROWS, packed_product, unpack

pytestmark = pytest.mark.skipif(
    not has_avx512bf16(), reason="bitsandbytes' packed CPU kernel needs AVX512-BF16"
)


@pytest.fixture(scope="module")
def nf4_model(tiny_model_dir):
    return load_model(str(tiny_model_dir), "float32", "nf4")


@pytest.fixture(scope="module")
def plain_nf4(tiny_model_dir):
    """The same model as bitsandbytes loads it (quantisation is deterministic), unsplit."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_compute_dtype=torch.float32)  # fmt: skip
    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), quantization_config=config)


def layers(model):
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


@pytest.mark.parametrize("shape", [(32, 64), (1536, 576), (576, 1536), (96, 128)])
@pytest.mark.parametrize("nested", [False, True])
def test_unpack_inverts_the_cpu_packing(shape, nested):
    weight = bnb.nn.Params4bit(
        torch.randn(shape), requires_grad=False, quant_type="nf4", compress_statistics=nested
    ).to("cpu")
    original = weight.data.clone()
    packed, _ = _convert_weight_packed_for_cpu(weight.data, copy.deepcopy(weight.quant_state))
    assert packed.shape == (shape[0], shape[1] // 2)
    assert torch.equal(unpack(packed, shape), original)


def test_each_layer_holds_one_packed_copy(nf4_model, plain_nf4):
    found, plain = layers(nf4_model), layers(plain_nf4)
    assert len(found) == 14  # 2 layers x (q, k, v, o, gate, up, down)
    for layer, reference in zip(found, plain, strict=True):
        n, k = layer.dense_state.shape
        assert layer.weight.data.shape == (n, k // 2)  # packed, replacing the original
        assert layer.weight.quant_state.packing_format_for_cpu
        assert layer.packed_weight.data_ptr() == layer.weight.data.data_ptr()  # one copy
        assert torch.equal(unpack(layer.weight.data, (n, k)), reference.weight.data)
        assert torch.equal(layer.dense_state.absmax, reference.weight.quant_state.absmax)


@pytest.mark.parametrize("rows", [1, 7, MAX_PACKED_ROWS])
def test_few_rows_take_the_packed_kernel(nf4_model, plain_nf4, rows):
    layer, reference = layers(nf4_model)[0], layers(plain_nf4)[0]
    x = torch.randn(rows, 1, layer.in_features)
    with torch.inference_mode():
        got = layer(x)
        packed = bnb.matmul_4bit(x, layer.packed_weight, quant_state=layer.packed_state)
        exact = x @ dequantize_4bit(reference.weight.data, reference.weight.quant_state).T
    assert torch.equal(got, packed)
    torch.testing.assert_close(got, exact, atol=0.05, rtol=0.05)  # bf16 activations


def test_the_kernel_is_called_directly_with_bitsandbytes_numbers(nf4_model, monkeypatch):
    """A decode step's call goes straight to bitsandbytes' kernel (same numbers as through
    its Python path); a call it would not make that way (a bias) still goes through it."""
    layer = layers(nf4_model)[0]
    x = torch.randn(5, layer.in_features)
    with torch.inference_mode():
        expected = bnb.matmul_4bit(x, layer.packed_weight, quant_state=layer.packed_state)
        bias = torch.randn(layer.out_features)
        expected_with_bias = bnb.matmul_4bit(
            x, layer.packed_weight, quant_state=layer.packed_state, bias=bias
        )
        through = []
        matmul = bnb.matmul_4bit
        monkeypatch.setattr(
            bnb, "matmul_4bit", lambda *a, **k: through.append(1) or matmul(*a, **k)
        )
        assert torch.equal(packed_product(x, layer.packed_weight, layer.packed_state), expected)
        assert torch.equal(layer(x), expected)
        assert not through
        got = packed_product(x, layer.packed_weight, layer.packed_state, bias)
        assert torch.equal(got, expected_with_bias) and through == [1]


def test_many_rows_take_dequantise_and_float32_matmul(nf4_model, plain_nf4):
    layer, reference = layers(nf4_model)[-1], layers(plain_nf4)[-1]
    reference.support_avx512bf16_for_cpu = False  # bitsandbytes' own dequantise path
    x = torch.randn(4, 40, layer.in_features)  # 160 rows
    with torch.inference_mode():
        got = layer(x)
        weight = dequantize_4bit(reference.weight.data, reference.weight.quant_state)
        expected = torch.nn.functional.linear(x, weight)
        assert torch.equal(got, reference(x))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_both_paths_still_right_after_the_state_dict_is_taken(tiny_model_dir, plain_nf4):
    """bitsandbytes undoes the packing in place when a state dict is taken (peft's adapter
    saving does): both paths must keep giving the layer's own output."""
    model = load_model(str(tiny_model_dir), "float32", "nf4")
    model.state_dict()
    layer, reference = layers(model)[-1], layers(plain_nf4)[-1]
    reference.support_avx512bf16_for_cpu = False
    with torch.inference_mode():
        for rows in (3, 160):
            x = torch.randn(rows, layer.in_features)
            torch.testing.assert_close(layer(x), reference(x), atol=0.05, rtol=0.05)
        x = torch.randn(160, layer.in_features)
        assert torch.equal(layer(x), reference(x))  # the float32 path: exact


def test_greedy_decoding_matches_generate(nf4_model, tiny_model_dir):
    """The decoder's prefill (many rows) and its steps (few) give what generate gives."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer("A short product text about a steel lamp")["input_ids"] * 8
    assert len(ids) > MAX_PACKED_ROWS  # the prompt goes through the dequantise path
    nf4_model.generation_config.eos_token_id = len(tokenizer) + 1  # never: full-length outputs
    ours = Decoder(nf4_model, None, max_new_tokens=12).decode([ids], tokenizer.pad_token_id)
    with torch.inference_mode():
        expected = nf4_model.generate(
            torch.tensor([ids]), max_new_tokens=12, do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(ids) :].tolist()  # fmt: skip
    assert ours[0].tokens == expected
