from product_descgen.llm.hf_backend import TransformersBackend
from product_descgen.llm.types import GenerationSettings, Request


def make_requests(n: int) -> list[Request]:
    return [
        Request(key=f"k{i}", prompt="word " * (i % 5 + 1), meta={"item_id": str(i)})
        for i in range(n)
    ]


def test_batched_generation_returns_every_item_with_counts(tiny_model_dir):
    backend = TransformersBackend(
        str(tiny_model_dir), GenerationSettings(max_new_tokens=6), batch_size=3, threads=1
    )
    batches = list(backend.generate(make_requests(7)))
    assert [len(b) for b in batches] == [3, 3, 1]
    results = [r for b in batches for r in b]
    assert sorted(r.key for r in results) == sorted(f"k{i}" for i in range(7))
    assert all(r.ok and 0 < r.completion_tokens <= 6 for r in results)
    # longest prompts first, so each batch pads little
    lengths = [r.prompt_tokens for r in results]
    assert lengths == sorted(lengths, reverse=True)
    assert all(r.meta["item_id"] for r in results)


def test_greedy_is_deterministic_and_batch_independent(tiny_model_dir):
    settings = GenerationSettings(max_new_tokens=8)
    one = TransformersBackend(str(tiny_model_dir), settings, batch_size=1, threads=1)
    many = TransformersBackend(str(tiny_model_dir), settings, batch_size=3, threads=1)
    texts_one = {r.key: r.text for b in one.generate(make_requests(7)) for r in b}
    chunks = list(many.generate(make_requests(7)))
    texts_many = {r.key: r.text for b in chunks for r in b}
    assert texts_one == texts_many  # padding and slot refills do not change greedy outputs
    assert all(len(chunk) <= 3 for chunk in chunks)


def test_seeded_sampling_is_reproducible(tiny_model_dir):
    settings = GenerationSettings(max_new_tokens=8, temperature=1.0, seed=3)
    backend = TransformersBackend(str(tiny_model_dir), settings, batch_size=2, threads=1)
    first = [r.text for b in backend.generate(make_requests(2)) for r in b]
    again = [r.text for b in backend.generate(make_requests(2)) for r in b]
    assert first == again


def test_chat_requests_use_the_chat_template(tiny_model_dir):
    backend = TransformersBackend(str(tiny_model_dir), GenerationSettings(max_new_tokens=4))
    request = Request(key="c", messages=({"role": "user", "content": "Hi"},))
    assert "<|im_start|>user\nHi" in backend.render(request)
    [[result]] = list(backend.generate([request]))
    assert result.ok


def test_prefix_cache_gives_the_same_greedy_output(tiny_model_dir):
    shared = "Instructions shared by every prompt, long enough to be cached. " * 4
    requests = [Request(key=str(i), prompt=shared + "Product number " + "x " * i) for i in range(5)]
    settings = GenerationSettings(max_new_tokens=8)
    cached = TransformersBackend(str(tiny_model_dir), settings, batch_size=3, threads=1)
    plain = TransformersBackend(
        str(tiny_model_dir), settings, batch_size=1, threads=1, prefix_cache=False
    )
    ids = cached._tokenise(requests)
    assert cached.shared_prefix(ids) >= 32
    assert plain.shared_prefix(ids) == 0
    with_cache = {r.key: r.text for b in cached.generate(requests) for r in b}
    alone = {r.key: r.text for b in plain.generate(requests) for r in b}
    assert with_cache == alone


def test_plain_prompts_get_the_tokenizers_special_tokens_chat_prompts_do_not(tiny_model_dir):
    backend = TransformersBackend(str(tiny_model_dir), GenerationSettings(max_new_tokens=2))
    plain, chat = backend._tokenise(
        [
            Request(key="p", prompt="Hi"),
            Request(key="c", messages=({"role": "user", "content": "Hi"},)),
        ]
    )
    assert plain == backend.tokenizer("Hi")["input_ids"]
    rendered = backend.render(Request(key="c", messages=({"role": "user", "content": "Hi"},)))
    assert chat == backend.tokenizer(rendered, add_special_tokens=False)["input_ids"]


def test_a_failure_costs_only_the_prompts_in_flight(tiny_model_dir, monkeypatch):
    """An error mid-decode is recorded for the rows then in flight; the rest still finish,
    with the outputs they get without the failure."""
    from product_descgen.llm.decoding import Decoder

    settings = GenerationSettings(max_new_tokens=6)
    clean = TransformersBackend(str(tiny_model_dir), settings, batch_size=2, threads=1)
    expected = {r.key: r.text for b in clean.generate(make_requests(7)) for r in b}
    forward, calls = Decoder._forward, []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the first grid's second decode step
            raise RuntimeError("boom")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(Decoder, "_forward", failing)
    backend = TransformersBackend(str(tiny_model_dir), settings, batch_size=2, threads=1)
    results = [r for b in backend.generate(make_requests(7)) for r in b]
    assert sorted(r.key for r in results) == sorted(expected)  # each once
    lost = [r for r in results if not r.ok]
    assert len(lost) == 2 and all(r.error == "RuntimeError: boom" for r in lost)
    assert {r.key for r in lost} == {"k4", "k3"}  # the longest two: the first grid
    assert {r.key: r.text for r in results if r.ok} == {
        k: v for k, v in expected.items() if k not in {r.key for r in lost}
    }
