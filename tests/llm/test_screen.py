"""The float16-screened output layer: its error bound holds, and its greedy choice is the
float32 layer's, near-ties and processors included."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

from product_descgen.llm import screen
from product_descgen.llm.decoding import Decoder
from product_descgen.llm.logits import RepetitionPenaltyInPlace
from product_descgen.llm.screen import ScreenedHead
from tests.llm.test_decoding import PAD, prompts, tiny


def _fbgemm() -> bool:
    try:
        torch.ops.quantized.linear_prepack_fp16(torch.ones(1, 1), None)
    except RuntimeError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _fbgemm(), reason="fbgemm (x86 with AVX2) is not here")


def near_ties(vocab: int = 3000, features: int = 64, seed: int = 0) -> torch.Tensor:
    """Random output-layer weights in which every odd row is its even neighbour moved by less
    than float16 resolves (its spacing is about 3e-5 at 0.05): the float16 copy cannot tell
    the pairs apart, float32 can."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(vocab, features, generator=generator) * 0.05
    weight[::4] *= 1e-4  # some small enough to be subnormal in float16
    nudge = torch.randn(vocab // 2, features, generator=generator) * 1e-5
    weight[1::2] = weight[0::2] + nudge
    return weight


def test_the_bound_holds_for_every_token():
    weight = near_ties()
    head = ScreenedHead(weight)
    hidden = torch.randn(20, weight.shape[1], generator=torch.Generator().manual_seed(1))
    hidden[:5] *= 300  # large hidden states, as after Gemma 3's final norm
    error = (head.approximate(hidden).double() - hidden.double() @ weight.double().t()).abs()
    assert (error <= head.bound(hidden)[:, None] / screen.SAFETY).all()
    assert error.max() > 0  # the copy is not exact: the test can fail


@pytest.mark.parametrize(("penalty", "whole"), [(1.0, False), (1.3, False), (1.3, True)])
def test_the_greedy_choice_is_the_float32_layers(penalty, whole, monkeypatch):
    weight = near_ties()
    head = ScreenedHead(weight)
    if whole:  # so many candidates that the whole float32 layer runs
        monkeypatch.setattr(screen, "WHOLE", 0)
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(0, weight.shape[0], (24, 30), generator=generator)
    processors = [RepetitionPenaltyInPlace(penalty), NoRepeatNGramLogitsProcessor(2)]

    def process(scores: torch.Tensor) -> torch.Tensor:
        for processor in processors:
            scores = processor(ids, scores)
        return scores

    hidden = torch.randn(24, weight.shape[1], generator=generator) * 50
    unpenalised = process(hidden.double() @ weight.double().t()).argmax(-1)
    ids[:, -1] = unpenalised  # seen: a penalty must demote them
    truth = process(hidden.double() @ weight.double().t())  # float64, the ground truth
    top = truth.topk(2, dim=-1).values
    assert (top[:, 0] - top[:, 1] > 1e-5).all()  # no tie within float32's own rounding
    expected = truth.argmax(-1)
    token, scores = head.choose(hidden, head.approximate(hidden), process, penalty)
    assert torch.equal(token, expected)
    assert torch.equal(scores.argmax(-1), expected)
    if penalty == 1.0:  # the float16 copy alone would choose otherwise
        assert not torch.equal(process(head.approximate(hidden)).argmax(-1), expected)
    else:  # the penalty changed most rows' winners
        assert (expected != unpenalised).sum() >= 20


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_decoding_gives_the_float32_layers_tokens(kind, monkeypatch):
    model = tiny(kind)
    layer = model.get_output_embeddings()
    with torch.no_grad():  # near-ties: every other row its neighbour scaled by 1 + 1e-4, a
        odd = layer.weight[1::2]  # step float16 (2**-11) cannot see and float32 can
        odd.copy_(layer.weight[0::2][: len(odd)] * (1 + 1e-4))
    calls = []
    choose = ScreenedHead.choose
    monkeypatch.setattr(ScreenedHead, "choose", lambda *a: calls.append(1) or choose(*a))

    def decode(screened: bool) -> list[list[int]]:
        decoder = Decoder(model, None, max_new_tokens=12, repetition_penalty=1.2)
        assert decoder.screen is not None
        decoder.screen = decoder.screen if screened else None
        return [out.tokens for out in decoder.decode(prompts(), PAD)]

    screened, float32 = decode(True), decode(False)
    assert screened == float32
    assert calls  # the screen chose the tokens

    def copy_alone(self, hidden, approximate, process, lipschitz):  # no float32 candidates
        scores = process(approximate)
        return scores.argmax(-1), scores

    monkeypatch.setattr(ScreenedHead, "choose", copy_alone)
    assert decode(True) != float32  # so the near-ties mattered: the test can fail


def test_layers_and_rules_it_cannot_screen_keep_the_float32_layer():
    model = tiny("llama")
    assert Decoder(model, None, max_new_tokens=4, temperature=0.7).screen is None
    assert Decoder(model, None, max_new_tokens=4, repetition_penalty=0.9).screen is None
    library = tiny("llama").to(torch.bfloat16)  # not on the lean forward
    assert Decoder(library, None, max_new_tokens=4).screen is None
    assert ScreenedHead.of(torch.nn.Linear(8, 16, bias=True)) is None
    huge = torch.nn.Linear(8, 16, bias=False)
    with torch.no_grad():
        huge.weight[0, 0] = 1e6  # beyond float16's range
    assert ScreenedHead.of(huge) is None


def test_one_copy_per_layer_until_its_weight_changes():
    layer = torch.nn.Linear(16, 40, bias=False)
    first = ScreenedHead.of(layer)
    assert first is not None and ScreenedHead.of(layer) is first
    hidden = torch.randn(3, 16)
    with torch.no_grad():
        layer.weight.mul_(2)
    second = ScreenedHead.of(layer)
    assert second is not first
    torch.testing.assert_close(second.approximate(hidden), layer(hidden), rtol=1e-3, atol=1e-3)
