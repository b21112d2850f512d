import pytest
import torch

from product_descgen.llm.backends import Connection
from product_descgen.llm.hf_backend import TransformersBackend, load_model, resolve_device
from product_descgen.llm.types import GenerationSettings, Request, prompt_token_ids
from tests.tiny_models import build_tiny_adapter

CPU = Connection(backend="transformers", device="cpu")
CHAT = Request(key="c", messages=({"role": "user", "content": "Hi"},))


def make_requests(n: int) -> list[Request]:
    return [
        Request(key=f"k{i}", prompt="word " * (i % 5 + 1), meta={"item_id": str(i)})
        for i in range(n)
    ]


def run(backend: TransformersBackend, requests: list[Request]) -> dict:
    return {r.key: r for batch in backend.generate(requests) for r in batch}


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    """One loaded tiny model (float32, CPU); tests set ``settings`` and ``batch_size``."""
    return TransformersBackend(str(tiny_model_dir), GenerationSettings(), CPU)


@pytest.fixture(autouse=True)
def reset(backend):
    model, config = backend.model, backend.model.generation_config.to_dict()
    yield
    backend.settings, backend.batch_size, backend.model = GenerationSettings(), 16, model
    backend.model.generation_config.update(**config)


def test_batches_come_back_longest_first_with_counts(backend):
    backend.settings, backend.batch_size = GenerationSettings(max_new_tokens=6), 3
    requests = make_requests(7)
    batches = list(backend.generate(requests))
    assert [len(b) for b in batches] == [3, 3, 1]
    results = [r for b in batches for r in b]
    assert sorted(r.key for r in results) == sorted(r.key for r in requests)
    lengths = {r.key: len(prompt_token_ids(backend.tokenizer, r)) for r in requests}
    assert [r.prompt_tokens for r in results] == [lengths[r.key] for r in results]
    assert [r.prompt_tokens for r in results] == sorted(lengths.values(), reverse=True)
    # the random tiny model emits no EOS in 6 tokens: every row runs to max_new_tokens
    assert all(r.ok and r.completion_tokens == 6 and r.finish_reason == "length" for r in results)
    assert all(r.meta["item_id"] and r.meta["batch_size"] == 3 for r in results)
    for batch in batches:  # every row of a batch gets the batch's wall time
        assert len({r.latency_s for r in batch}) == 1 and batch[0].latency_s > 0


def test_greedy_is_batch_size_independent(backend):
    """Left padding is masked out, so in float32 a prompt's greedy text does not depend on
    what it is batched with."""
    backend.settings = GenerationSettings(max_new_tokens=8)
    backend.batch_size = 1
    alone = {k: r.text for k, r in run(backend, make_requests(7)).items()}
    backend.batch_size = 3
    batched = {k: r.text for k, r in run(backend, make_requests(7)).items()}
    assert batched == alone
    assert len(set(alone.values())) > 1  # the prompts do give different texts


def test_seeded_sampling_is_reproducible(backend):
    backend.settings, backend.batch_size = GenerationSettings(max_new_tokens=8), 2
    greedy = {k: r.text for k, r in run(backend, make_requests(4)).items()}
    sampled = []
    for seed in (3, 3, 4):
        backend.settings = GenerationSettings(max_new_tokens=8, temperature=1.0, seed=seed)
        sampled.append({k: r.text for k, r in run(backend, make_requests(4)).items()})
    assert sampled[0] == sampled[1]
    assert sampled[0] != sampled[2] and sampled[0] != greedy


def test_chat_requests_use_the_chat_template(backend, monkeypatch):
    tokenizer = backend.tokenizer
    rendered = tokenizer.apply_chat_template(
        list(CHAT.messages), tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nHi" in rendered
    plain = prompt_token_ids(tokenizer, Request(key="p", prompt="Hi"))
    chat = prompt_token_ids(tokenizer, CHAT)
    assert plain == tokenizer("Hi")["input_ids"]
    assert chat == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    seen, generate = [], backend.model.generate
    monkeypatch.setattr(
        backend.model, "generate", lambda **kw: seen.append(kw["input_ids"]) or generate(**kw)
    )
    backend.settings = GenerationSettings(max_new_tokens=4)
    [[result]] = list(backend.generate([CHAT]))
    assert result.ok and result.prompt_tokens == len(chat)
    assert seen[0][0].tolist() == chat


def test_stop_strings_cut_the_text_and_end_the_row(backend):
    backend.settings, backend.batch_size = GenerationSettings(max_new_tokens=8), 7
    plain = run(backend, make_requests(7))
    words = plain["k3"].text.split(" ")
    assert len(words) > 2  # the tiny model repeats a word: stop across its first two
    stop = words[0][-2:] + " " + words[1][:1]  # mid-token: generate's own text runs past it
    backend.settings = GenerationSettings(max_new_tokens=8, stop=[stop])
    cut = run(backend, make_requests(7))
    assert {r.finish_reason for r in cut.values()} == {"stop", "length"}  # rows of both kinds
    for key, result in cut.items():
        before = plain[key].text
        if stop in before:
            assert result.finish_reason == "stop"
            assert result.text == before[: before.index(stop)].strip()
            # ended early: the padding after it (other rows ran on) is not counted
            assert 0 < result.completion_tokens < 8
        else:
            assert result.finish_reason == "length" and result.completion_tokens == 8
            assert result.text == before


def test_eos_ends_a_row_with_stop_and_is_not_counted(backend):
    backend.settings, backend.batch_size = GenerationSettings(max_new_tokens=8), 7
    plain = run(backend, make_requests(7))
    first = backend.tokenizer(" " + plain["k3"].text.split(" ")[1])["input_ids"][0]
    backend.model.generation_config.eos_token_id = first  # pad (<|im_end|>) is now not EOS
    ended = run(backend, make_requests(7))
    assert {r.finish_reason for r in ended.values()} == {"stop", "length"}
    for key, result in ended.items():
        if result.finish_reason == "stop":  # the EOS itself is not a generated token
            assert result.completion_tokens == len(backend.tokenizer(result.text)["input_ids"])
            assert result.completion_tokens < 8 and plain[key].text.startswith(result.text)
        else:
            assert result.completion_tokens == 8 and result.text == plain[key].text


class FakeModel:
    """Reports a device no tensor is on by default and records what ``generate`` gets."""

    def __init__(self, real) -> None:
        self.device = torch.device("meta")
        self.generation_config = real.generation_config
        self.calls: list[dict] = []

    def generate(self, **kwargs):
        self.calls.append(kwargs)
        rows, width = kwargs["input_ids"].shape
        return torch.full((rows, width + 3), 42)


def test_every_input_goes_to_the_models_device(backend):
    fake = FakeModel(backend.model)
    backend.model, backend.batch_size = fake, 3
    backend.settings = GenerationSettings(max_new_tokens=3)
    results = [r for b in backend.generate(make_requests(5)) for r in b]
    assert len(fake.calls) == 2 and all(r.completion_tokens == 3 for r in results)
    for kwargs in fake.calls:
        tensors = [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
        assert {"input_ids", "attention_mask"} <= kwargs.keys()
        assert all(t.device == fake.device for t in tensors)


def test_an_error_in_generate_propagates(backend, monkeypatch):
    calls, generate = [], backend.model.generate

    def failing(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory")
        return generate(**kwargs)

    monkeypatch.setattr(backend.model, "generate", failing)
    backend.settings, backend.batch_size = GenerationSettings(max_new_tokens=3), 3
    stream = backend.generate(make_requests(7))
    assert all(r.ok for r in next(stream))  # the first batch is delivered as it finishes
    with pytest.raises(RuntimeError, match="out of memory"):
        next(stream)


def test_an_empty_prompt_is_a_failed_row(backend):
    backend.settings = GenerationSettings(max_new_tokens=2)
    results = run(backend, [Request(key="e", prompt=""), *make_requests(2)])
    assert results["e"].error == "empty prompt" and not results["e"].ok
    assert results["k0"].ok and results["k1"].ok


def test_a_missing_chat_template_fails_loudly(backend, monkeypatch):
    monkeypatch.setattr(backend.tokenizer, "chat_template", None)
    with pytest.raises(ValueError, match="no chat template"):
        list(backend.generate([CHAT]))


def test_auto_device_is_cuda_when_there_is_one_else_cpu(backend):
    assert backend.model.device == torch.device("cpu")
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda") == "cuda"


def test_an_adapter_is_merged_into_a_plain_base_and_kept_on_a_quantized_one(
    tiny_model_dir, tmp_path
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = str(build_tiny_adapter(tiny_model_dir, tmp_path / "adapter"))

    plain = load_model(str(tiny_model_dir), CPU, adapter)
    assert not isinstance(plain, PeftModel)
    assert not any("lora" in name for name, _ in plain.named_parameters())
    nf4 = load_model(str(tiny_model_dir), CPU.model_copy(update={"quantization": "nf4"}), adapter)
    assert isinstance(nf4, PeftModel) and nf4.device == torch.device("cpu")
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        reference = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter
        )(ids).logits
        without = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        assert torch.allclose(plain(ids).logits, reference, atol=1e-4)
        assert not torch.allclose(plain(ids).logits, without, atol=1e-4)
