"""nf4 on CPU: each 4-bit layer serves few rows through the packed kernel, many through
dequantise + float32 matmul (the numerics QLoRA trained with)."""

from __future__ import annotations

import bitsandbytes as bnb
import pytest
import torch
from bitsandbytes.functional import dequantize_4bit, has_avx512bf16

from product_descgen.llm.decoding import Decoder
from product_descgen.llm.hf_backend import load_model
from product_descgen.llm.nf4_cpu import MAX_PACKED_ROWS

pytestmark = pytest.mark.skipif(
    not has_avx512bf16(), reason="bitsandbytes' packed CPU kernel needs AVX512-BF16"
)


@pytest.fixture(scope="module")
def nf4_model(tiny_model_dir):
    return load_model(str(tiny_model_dir), "float32", "nf4")


def layers(model):
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def test_every_layer_gets_a_packed_copy_and_keeps_its_weight(nf4_model):
    found = layers(nf4_model)
    assert len(found) == 14  # 2 layers x (q, k, v, o, gate, up, down)
    for layer in found:
        assert layer.packed_weight.dtype == torch.uint8
        assert layer.packed_state.packing_format_for_cpu
        assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)


@pytest.mark.parametrize("rows", [1, 7, MAX_PACKED_ROWS])
def test_few_rows_take_the_packed_kernel(nf4_model, rows):
    layer = layers(nf4_model)[0]
    x = torch.randn(rows, 1, layer.in_features)
    with torch.inference_mode():
        got = layer(x)
        packed = bnb.matmul_4bit(x, layer.packed_weight, quant_state=layer.packed_state)
        reference = x @ dequantize_4bit(layer.weight.data, layer.weight.quant_state).T
    assert torch.equal(got, packed)
    torch.testing.assert_close(got, reference, atol=0.05, rtol=0.05)  # bf16 activations


def test_many_rows_take_dequantise_and_float32_matmul(nf4_model):
    layer = layers(nf4_model)[-1]
    x = torch.randn(4, 40, layer.in_features)  # 160 rows
    with torch.inference_mode():
        got = layer(x)
        weight = dequantize_4bit(layer.weight.data, layer.weight.quant_state)
        expected = torch.nn.functional.linear(x, weight)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


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
