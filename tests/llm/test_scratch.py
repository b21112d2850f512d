"""Linear layers computed into given buffers give the module's own output, bit for bit, and
layers it does not know run their own forward."""

from __future__ import annotations

import pytest
import torch

from product_descgen.llm import scratch


def layers() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 24, bias=False), torch.nn.Linear(24, 8))


def with_lora(model: torch.nn.Module) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["0"], init_lora_weights=False)
    return get_peft_model(model, config).eval()


def test_buffers_are_reused_contiguous_views():
    buffers = scratch.Scratch(rows=10)
    a = buffers.get("a", 10, 6)
    b = buffers.get("a", 4, 2, 3)
    assert b.is_contiguous() and b.data_ptr() == a.data_ptr()
    assert buffers.get("b", 3, 6).data_ptr() != a.data_ptr()
    wider = buffers.get("a", 2, 12)  # more columns than before: a new buffer
    assert wider.shape == (2, 12) and wider.is_contiguous()
    with pytest.raises(ValueError, match="11 rows in a scratch of 10"):
        buffers.get("a", 11, 6)


@pytest.mark.parametrize("adapter", [False, True])
def test_same_numbers_as_the_modules_forward(adapter):
    model = with_lora(layers()) if adapter else layers().eval()
    plain = model.get_base_model() if adapter else model
    first = plain[0]
    x = torch.randn(7, 16)
    out, spare = torch.full((7, 24), float("nan")), torch.empty(7, 24)
    borrowed = []
    with torch.inference_mode():
        scratch.linear_into(first, x, out, lambda: borrowed.append(1) or spare)
        assert torch.equal(out, first(x))
    assert borrowed == ([1] if adapter else [])  # the spare buffer only for a LoRA term


def test_layers_it_does_not_know_run_their_own_forward():
    torch.manual_seed(0)
    biased = torch.nn.Linear(16, 8)  # a bias: the module's own forward
    x, out = torch.randn(5, 16), torch.empty(5, 8)
    calls = []
    biased.register_forward_hook(lambda *args: calls.append(1))
    with torch.inference_mode():
        scratch.linear_into(biased, x, out, lambda: torch.empty(5, 8))
        assert torch.equal(out, biased(x))
    assert len(calls) == 2


def test_an_int8_layer_runs_its_own_forward():
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = layers().eval()
    quantize_(model, Int8WeightOnlyConfig())
    x, out = torch.randn(5, 16), torch.empty(5, 24)
    with torch.inference_mode():
        scratch.linear_into(model[0], x, out, lambda: torch.empty(5, 24))
        assert torch.equal(out, model[0](x))
