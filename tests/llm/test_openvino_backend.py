import contextlib

import openvino
import pytest

from product_descgen import runtime
from product_descgen.llm import openvino_backend, openvino_compat
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.llm.hf_backend import TransformersBackend
from product_descgen.llm.openvino_backend import OpenVINOBackend, engine_properties
from product_descgen.llm.types import GenerationSettings, Request

pytestmark = pytest.mark.slow


def at_f32(**settings) -> Connection:
    """The tiny fp32 export served at f32: transformers' float32 text."""
    return Connection(backend="openvino", weights="fp32", precision="f32", **settings)


def on_cpu(**settings) -> Connection:
    """The transformers reference on the CPU."""
    return Connection(backend="transformers", device="cpu", **settings)


def requests(n: int) -> list[Request]:
    return [
        Request(key=f"k{i}", prompt="A product: " + "word " * (i % 7 + 1) + f"number {i}")
        for i in range(n)
    ]


def texts(backend, reqs) -> dict[str, str]:
    return {r.key: r.text for chunk in backend.generate(reqs) for r in chunk}


def test_f32_greedy_text_equals_the_transformers_reference(tiny_model_dir, tiny_openvino_dir):
    settings = GenerationSettings(max_new_tokens=30, repetition_penalty=1.1)
    reference = TransformersBackend(str(tiny_model_dir), settings, on_cpu(batch_size=4))
    engine = OpenVINOBackend(str(tiny_openvino_dir), settings, at_f32(batch_size=4))
    reqs = requests(12)
    expected, got = texts(reference, reqs), texts(engine, reqs)
    assert got == expected
    assert len(set(got.values())) > 1  # the prompts lead somewhere different


def test_every_request_comes_back_once_in_chunks(tiny_openvino_dir):
    settings = GenerationSettings(max_new_tokens=8)
    engine = OpenVINOBackend(
        str(tiny_openvino_dir),
        settings,
        Connection(backend="openvino", weights="fp32", batch_size=3),
    )
    chunks = list(engine.generate(requests(7)))
    assert [len(c) for c in chunks] == [3, 3, 1]
    results = [r for c in chunks for r in c]
    assert sorted(r.key for r in results) == sorted(f"k{i}" for i in range(7))
    assert all(r.ok and r.completion_tokens == 8 and r.finish_reason == "length" for r in results)
    assert all(r.prompt_tokens > 0 and r.latency_s > 0 for r in results)


def test_stop_strings_end_generation_and_are_cut(tiny_openvino_dir):
    plain = OpenVINOBackend(str(tiny_openvino_dir), GenerationSettings(max_new_tokens=24))
    [[first]] = list(plain.generate(requests(1)))
    words = first.text.split()
    stop = words[len(words) // 2]  # a word the model is known to produce midway
    stopped = OpenVINOBackend(
        str(tiny_openvino_dir), GenerationSettings(max_new_tokens=24, stop=[stop])
    )
    [[cut]] = list(stopped.generate(requests(1)))
    assert stop not in cut.text
    assert first.text.startswith(cut.text)
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens < first.completion_tokens


def test_a_stop_string_as_the_first_token_gives_an_empty_text(tiny_model_dir, tiny_openvino_dir):
    """The engine returns no output for such a request; the backend gives what transformers
    gives: an empty text that stopped."""
    probe = [Request(key="p", prompt="word 39 " * 40 + "\n### The better one is (A or B):\n")]
    plain = OpenVINOBackend(str(tiny_openvino_dir), GenerationSettings(max_new_tokens=4))
    [[first]] = list(plain.generate(probe))
    assert first.text == "" and first.completion_tokens == 4  # only newlines: stripped
    settings = GenerationSettings(max_new_tokens=4, stop=["\n"])
    engine = OpenVINOBackend(str(tiny_openvino_dir), settings, at_f32())
    reference = TransformersBackend(str(tiny_model_dir), settings, on_cpu())
    [[got]] = list(engine.generate(probe))
    assert (got.text, got.finish_reason) == ("", "stop")
    assert texts(reference, probe) == {"p": ""}


def test_seeded_sampling_is_reproducible(tiny_openvino_dir):
    settings = GenerationSettings(max_new_tokens=12, temperature=1.0, seed=3)
    engine = OpenVINOBackend(str(tiny_openvino_dir), settings)
    assert texts(engine, requests(3)) == texts(engine, requests(3))


def test_make_backend_builds_the_engine_and_refuses_an_unmerged_adapter(tiny_openvino_dir):
    connection = Connection(backend="openvino", weights="fp32", batch_size=2)
    backend = make_backend(connection, str(tiny_openvino_dir), GenerationSettings())
    assert backend.name == "openvino"
    with pytest.raises(ValueError, match="adapter"):
        make_backend(connection, str(tiny_openvino_dir), GenerationSettings(), adapter="a")


def test_each_engine_step_runs_under_the_stall_guard(tiny_openvino_dir, monkeypatch):
    guarded = []

    @contextlib.contextmanager
    def record(timeout_s):
        guarded.append(timeout_s)
        yield

    monkeypatch.setattr(openvino_backend, "exit_if_stuck", record)
    connection = Connection(backend="openvino", weights="fp32", step_timeout_s=42)
    backend = make_backend(connection, str(tiny_openvino_dir), GenerationSettings(max_new_tokens=4))
    assert len([r for chunk in backend.generate(requests(2)) for r in chunk]) == 2
    assert len(guarded) >= 4 and set(guarded) == {42}  # every step, at least one per token


def test_the_connection_must_serve_the_weights_the_export_holds(tiny_openvino_dir):
    """The serving name (reports, cache keys) comes from the connection's weights and the
    engine's settings from the same value: a directory holding other weights is refused."""
    connection = Connection(backend="openvino", weights="int8")
    with pytest.raises(
        ValueError, match="holds fp32 weights, but the connection serves it as int8"
    ):
        make_backend(connection, str(tiny_openvino_dir), GenerationSettings())


def test_a_model_directory_that_is_not_exported_is_a_clear_error(tiny_model_dir):
    with pytest.raises(FileNotFoundError, match="not an OpenVINO model directory"):
        OpenVINOBackend(str(tiny_model_dir), GenerationSettings())


def test_engine_properties_follow_the_precision_and_thread_settings():
    assert engine_properties("f32", 1) == {
        "INFERENCE_NUM_THREADS": 1,
        "sampler_num_threads": 1,
        "INFERENCE_PRECISION_HINT": "f32",
        "KV_CACHE_PRECISION": "f32",
    }
    assert engine_properties("auto", 2) == {"INFERENCE_NUM_THREADS": 2, "sampler_num_threads": 1}
    assert engine_properties("auto", 1, "int8") == {
        "INFERENCE_NUM_THREADS": 1,
        "sampler_num_threads": 1,
    }


@pytest.mark.parametrize("weights", ["fp32", None])
def test_auto_on_one_thread_computes_in_f32_where_the_plugin_would_crash(monkeypatch, weights):
    f32 = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
    monkeypatch.setattr(openvino_compat, "BF16_CRASH", (openvino.__version__,))
    assert engine_properties("auto", 1, weights).items() >= f32.items()
    assert not engine_properties("auto", 2, weights).items() & f32.items()
    monkeypatch.setattr(openvino_compat, "BF16_CRASH", ())
    assert not engine_properties("auto", 1, weights).items() & f32.items()


@pytest.mark.parametrize(
    ("weights", "n_threads", "named"),
    [("fp32", 1, "f32"), ("fp32", 2, "auto"), ("int8", 1, "auto")],
)
def test_the_serving_name_says_the_precision_applied(monkeypatch, weights, n_threads, named):
    """Reports and cache keys name what computes the text: the crash workaround's f32."""
    monkeypatch.setattr(openvino_compat, "BF16_CRASH", (openvino.__version__,))
    monkeypatch.setattr(runtime, "threads", lambda: n_threads)
    connection = Connection(weights=weights, model_dir="m")
    assert connection.serving == f"openvino {weights} ({named})"
    assert connection.model_id == f"m|openvino {weights} ({named})"
