"""Serving with float16 linear weights (``quantization: float16``): a QLoRA adapter merged
into the nf4 base it was trained on, the output layer left float32 and screened."""

from __future__ import annotations

import torch
from torch.ao.nn.quantized.dynamic import Linear as Float16Linear

from product_descgen.llm.decoding import Decoder
from product_descgen.llm.hf_backend import TransformersBackend, load_model
from product_descgen.llm.types import GenerationSettings
from tests.llm.test_hf_backend import make_requests


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids).logits.float()


def test_the_adapter_is_merged_into_the_nf4_base_it_was_trained_on(tiny_model_dir, adapter_dir):
    served = load_model(str(tiny_model_dir), "float32", "float16", adapter=adapter_dir)
    layer = served.model.layers[0]
    assert type(layer.self_attn.q_proj) is Float16Linear
    assert type(layer.mlp.down_proj) is Float16Linear
    assert type(served.get_output_embeddings()) is torch.nn.Linear  # float32, screened
    assert Decoder(served, None, max_new_tokens=4).screen is not None
    ids = torch.randint(3, 1000, (2, 12), generator=torch.Generator().manual_seed(0))
    trained = logits(load_model(str(tiny_model_dir), "float32", "nf4", adapter=adapter_dir), ids)
    float32_base = logits(load_model(str(tiny_model_dir), "float32", "none", adapter_dir), ids)
    got = logits(served, ids)
    scale = trained.abs().max()
    assert (got - trained).abs().max() < 1e-2 * scale  # float16 rounding only
    assert (float32_base - trained).abs().max() > 3e-2 * scale  # nf4's error: it would show


def test_generation_without_an_adapter(tiny_model_dir):
    settings = GenerationSettings(max_new_tokens=6)
    served = TransformersBackend(str(tiny_model_dir), settings, quantization="float16")
    plain = TransformersBackend(str(tiny_model_dir), settings)
    requests = make_requests(4)
    got = [r for batch in served.generate(requests) for r in batch]
    assert sorted(r.key for r in got) == sorted(r.key for r in requests)
    assert all(r.completion_tokens and r.error is None for r in got)
    ids = served.tokenizer(["a small test"], return_tensors="pt").input_ids
    torch.testing.assert_close(
        logits(served.model, ids), logits(plain.model, ids), rtol=0, atol=2e-2
    )
