"""The lean decode loop against transformers' own ``generate`` on tiny random models."""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

from product_descgen.llm.decoding import Decoder, SlotLayer

VOCAB = 97
PAD = 0


def tiny(kind: str) -> torch.nn.Module:
    """A random model with sharp logits (``initializer_range``): batch shape changes float
    rounding, which must not flip greedy near-ties of a flatter random model."""
    torch.manual_seed(0)
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, pad_token_id=PAD, eos_token_id=1,
            initializer_range=0.3,
        )  # fmt: skip
        model = LlamaForCausalLM(config)
    else:  # Gemma 3's hybrid layers: sliding-window attention much shorter than the prompts
        config = Gemma3TextConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=6,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            pad_token_id=PAD, eos_token_id=1, initializer_range=0.3,
        )  # fmt: skip
        model = Gemma3ForCausalLM(config)
    return model.eval()


def prompts() -> list[list[int]]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(2, VOCAB, (n,), generator=generator).tolist() for n in (14, 9, 11, 5)]


def generate(model: torch.nn.Module, rows: list[list[int]], new: int, **kwargs) -> list[list[int]]:
    """``model.generate`` on left-padded rows, cut at the first EOS."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[PAD] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
            pad_token_id=PAD, **kwargs,
        )[:, width:].tolist()  # fmt: skip
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    return [row[: min((row.index(e) for e in eos if e in row), default=len(row))] for row in out]


def eos_with_uneven_endings(model: torch.nn.Module, rows: list[list[int]], new: int) -> list[int]:
    """End-of-sequence tokens that make greedy rows end at different steps (some not at all),
    set as the model's EOS."""
    model.generation_config.eos_token_id = VOCAB  # never generated: full-length outputs
    outputs = [o.tokens for o in Decoder(model, None, max_new_tokens=new).decode(rows, PAD)]
    seen = sorted({t for tokens in outputs for t in tokens})
    for eos in [[a] for a in seen] + [[a, b] for a in seen for b in seen if a < b]:
        ends = [
            min((tokens.index(e) for e in eos if e in tokens), default=new) for tokens in outputs
        ]
        if len(set(ends)) >= 3 and new in ends:
            model.generation_config.eos_token_id = eos
            return eos
    raise AssertionError("no tokens end the rows unevenly")


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_greedy_output_equals_generate_while_rows_leave_the_batch(kind):
    model, rows = tiny(kind), prompts()
    eos_with_uneven_endings(model, rows, 16)
    ours = Decoder(model, None, max_new_tokens=16).decode(rows, PAD)
    assert [o.tokens for o in ours] == generate(model, rows, 16)
    assert len({len(o.tokens) for o in ours}) >= 3  # rows really left at different steps
    assert {o.finish_reason for o in ours} == {"stop", "length"}
    elapsed = [o.elapsed_s for o in sorted(ours, key=lambda o: len(o.tokens))]
    assert elapsed == sorted(elapsed)  # each row's time is when it finished


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_repetition_penalty_matches_generate(kind):
    model, rows = tiny(kind), prompts()
    model.generation_config.eos_token_id = VOCAB
    ours = Decoder(model, None, max_new_tokens=10, repetition_penalty=1.5).decode(rows, PAD)
    assert [o.tokens for o in ours] == generate(model, rows, 10, repetition_penalty=1.5)


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_shared_prefix_cache_gives_the_same_output(kind):
    model = tiny(kind)
    eos_with_uneven_endings(model, prompts(), 12)
    prefix = list(range(30, 50))  # longer than Gemma's sliding window
    rows = [prefix + r for r in prompts()]
    decoder = Decoder(model, None, max_new_tokens=12)
    alone = decoder.decode(rows, PAD)
    cached = decoder.decode(
        [r[len(prefix) :] for r in rows], PAD, prefix, decoder.prefix_cache(prefix)
    )
    assert [o.tokens for o in cached] == [o.tokens for o in alone]


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
def test_prompts_prefilled_in_chunks_give_the_same_output(kind, monkeypatch):
    """Chunked prefill (memory) against one pass: same tokens, more forward passes."""
    model = tiny(kind)
    eos_with_uneven_endings(model, prompts(), 12)
    prefix = list(range(30, 50))  # longer than Gemma's sliding window
    calls = []
    update, layers = SlotLayer.update, model.config.num_hidden_layers

    def counted(self, *args, **kwargs):  # every layer writes its cache once per pass
        calls.append(1 / layers)
        return update(self, *args, **kwargs)

    monkeypatch.setattr(SlotLayer, "update", counted)
    whole = Decoder(model, None, max_new_tokens=12).decode(prompts(), PAD)
    one_pass = sum(calls)
    chunked = Decoder(model, None, max_new_tokens=12, prefill_tokens=8)
    assert [o.tokens for o in chunked.decode(prompts(), PAD)] == [o.tokens for o in whole]
    # 14 prompt columns; the lean forward skips the padding and cuts 39 real tokens into 6
    # passes of at most 8 (the library's forward would take 2 columns a pass: 7 passes)
    assert round(sum(calls) - one_pass) == round(one_pass) + 5
    cached = chunked.decode(prompts(), PAD, prefix, chunked.prefix_cache(prefix))
    alone = Decoder(model, None, max_new_tokens=12).decode([prefix + r for r in prompts()], PAD)
    assert [o.tokens for o in cached] == [o.tokens for o in alone]


def test_seeded_sampling_is_reproducible_and_varies_with_the_seed():
    model, rows = tiny("llama"), prompts()
    model.generation_config.eos_token_id = VOCAB

    def sample(seed: int) -> list[list[int]]:
        decoder = Decoder(model, None, max_new_tokens=12, temperature=1.0, top_p=0.9, seed=seed)
        return [o.tokens for o in decoder.decode(rows, PAD)]

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)


def test_the_cache_refuses_to_write_past_its_capacity():
    layer = SlotLayer(capacity=4)
    layer.update(torch.zeros(2, 1, 3, 8), torch.zeros(2, 1, 3, 8))
    assert layer.get_seq_length() == 3
    layer.batch_select_indices(torch.tensor([1]))
    assert layer.keys.shape == (1, 1, 3, 8)
    with pytest.raises(RuntimeError, match="capacity"):
        layer.update(torch.zeros(1, 1, 2, 8), torch.zeros(1, 1, 2, 8))


def test_rows_leave_and_join_in_place_until_half_are_gone():
    """Rows leaving or joining reuse the buffer (no new allocation, hence no page faults in
    the decode loop); at half the rows or fewer the rest moves to a smaller buffer."""
    layer = SlotLayer(capacity=6, slots=4)
    keys = torch.arange(4.0)[:, None, None, None].expand(4, 1, 2, 3)
    layer.update(keys, -keys)
    buffer = layer._keys.data_ptr()
    layer.batch_select_indices(torch.tensor([0, 2, 3]))  # row 1 leaves
    assert layer._keys.data_ptr() == buffer
    assert layer.keys[:, 0, 0, 0].tolist() == [0.0, 2.0, 3.0]
    assert layer.values[:, 0, 0, 0].tolist() == [0.0, -2.0, -3.0]
    new_keys, new_values = layer.new_rows(1)  # a row joins in the free slot
    new_keys[:], new_values[:] = 7.0, -7.0
    assert layer._keys.data_ptr() == buffer
    assert layer.keys[:, 0, 0, 0].tolist() == [0.0, 2.0, 3.0, 7.0]
    layer.update(torch.ones(4, 1, 1, 3), torch.ones(4, 1, 1, 3))
    assert layer.keys.shape == (4, 1, 3, 3)
    layer.batch_select_indices(torch.tensor([1, 3]))  # half left: a smaller buffer
    assert layer._keys.data_ptr() != buffer and layer._keys.shape[0] == 2
    assert layer.keys[:, 0, 0, 0].tolist() == [2.0, 7.0]
    assert layer.values[:, 0, :, 0].tolist() == [[-2.0, -2.0, 1.0], [-7.0, -7.0, 1.0]]
    layer.new_rows(1)  # no free row: the buffer grows
    assert layer.keys.shape == (3, 1, 3, 3)
    assert layer.keys[:2, 0, 0, 0].tolist() == [2.0, 7.0]


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
@pytest.mark.parametrize("with_prefix", [False, True])
def test_continuous_batching_gives_each_row_its_own_output(kind, with_prefix):
    """Two slots for ten prompts: finished rows are replaced mid-flight by later prompts,
    padded into the grid, and the grid is compacted when its columns run out."""
    model = tiny(kind)
    generator = torch.Generator().manual_seed(6)
    many = [
        torch.randint(2, VOCAB, (n,), generator=generator).tolist() for n in (12, 10, 9, 7, 4, 3)
    ]
    prefix = list(range(30, 50)) if with_prefix else []
    eos_with_uneven_endings(model, [prefix + row for row in many], 10)
    decoder = Decoder(model, None, max_new_tokens=10)
    decoder.room = 3  # little spare cache: the grid is compacted or grown every few steps
    events = {"admit": 0, "compact": 0}
    admit, make_room = decoder._admit, decoder._make_room

    def counting_admit(*args):
        events["admit"] += 1
        return admit(*args)

    def counting_make_room(grid, cache):
        before = cache.layers[0].capacity
        make_room(grid, cache)
        events["compact"] += cache.layers[0].capacity != before

    decoder._admit, decoder._make_room = counting_admit, counting_make_room
    kv = decoder.prefix_cache(prefix) if prefix else None
    streamed = list(decoder.stream(many, PAD, 2, prefix, kv))
    assert sorted(i for i, _ in streamed) == list(range(len(many)))  # each once
    assert events["admit"] > 0 and events["compact"] > 0
    alone = [decoder.decode([prefix + row], PAD)[0] for row in many]
    outputs = dict(streamed)
    assert [outputs[i].tokens for i in range(len(many))] == [a.tokens for a in alone]
    assert [outputs[i].finish_reason for i in range(len(many))] == [a.finish_reason for a in alone]
