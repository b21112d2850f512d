"""The bitsandbytes workaround, on a real 4-bit layer: a probe in eval mode leaves the layer as
training needs it (fails without the fix on CPUs with AVX512-BF16, as the suite's machine)."""

from __future__ import annotations

from types import SimpleNamespace

import bitsandbytes as bnb
import bitsandbytes.functional as bnb_functional
import pytest
import torch

from product_descgen.training import bnb_compat

pytestmark = pytest.mark.skipif(not bnb_compat.affected(), reason="fix targets bnb 0.50.2")


def quantized_layer() -> bnb.nn.Linear4bit:
    """A 64x64 nf4 layer (double quantisation, bfloat16 compute: the project's QLoRA)."""
    weight = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(
        weight, requires_grad=False, quant_type="nf4", compress_statistics=True
    )
    return layer.to("cpu")  # quantised here


def input_gradient(layer: bnb.nn.Linear4bit) -> torch.Tensor | None:
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    layer.train()
    layer(x).float().sum().backward()
    return x.grad


def probe(layer: bnb.nn.Linear4bit) -> None:
    """What validation and the epoch probe do to the layer: a forward in eval mode."""
    layer.eval()
    with torch.inference_mode():
        layer(torch.randn(2, 64))
    layer.train()


def dequantized(layer: bnb.nn.Linear4bit) -> torch.Tensor:
    return bnb_functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state)


def test_a_probed_4bit_layer_trains_as_one_never_probed():
    reference = input_gradient(quantized_layer())
    layer = quantized_layer()
    assert bnb_compat.keep_training_layout(torch.nn.Sequential(layer)) in (0, 1)
    before = dequantized(layer).clone()
    for _ in range(3):  # three epochs' validation (or probe) and checkpoint save
        probe(layer)
        layer.state_dict()
    gradient = input_gradient(layer)
    assert gradient is not None and torch.equal(gradient, reference)  # the base path's gradient
    assert torch.equal(dequantized(layer), before)  # the frozen base has not drifted


def test_the_callback_keeps_the_training_models_layers_as_training_starts():
    model = torch.nn.Sequential(quantized_layer(), torch.nn.Linear(64, 64), quantized_layer())
    for layer in model[0], model[2]:
        layer.support_avx512bf16_for_cpu = True  # as bitsandbytes sets it on such CPUs
    [callback] = bnb_compat.fix_callbacks()
    callback.on_trainer_train_setup(SimpleNamespace(model=model), "", is_coordinator=True)
    assert not any(layer.support_avx512bf16_for_cpu for layer in (model[0], model[2]))
    assert bnb_compat.keep_training_layout(model) == 0  # nothing left to change
