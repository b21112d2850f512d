"""The openai backend against real loopback servers: ``transformers serve`` and a faulty fake."""

import time

import pytest

from product_descgen.callstore import CallStore
from product_descgen.llm.openai_backend import OpenAIBackend, RetryPolicy
from product_descgen.llm.types import GenerationSettings, Request
from product_descgen.step_runner import run_step
from tests.servers import FaultyServer, transformers_serve


@pytest.fixture(scope="module")
def served_tiny(tiny_model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with transformers_serve(tiny_model_dir, log) as base_url:
        yield base_url, str(tiny_model_dir)


@pytest.mark.slow
def test_chat_and_completion_against_transformers_serve(served_tiny):
    base_url, model = served_tiny
    backend = OpenAIBackend(base_url, model, GenerationSettings(max_new_tokens=5), concurrency=2)
    requests = [
        Request(key="chat", messages=({"role": "user", "content": "Describe a mug."},)),
        Request(key="completion", prompt="A red mug that"),
    ]
    results = {r.key: r for batch in backend.generate(requests) for r in batch}
    for key in ("chat", "completion"):
        result = results[key]
        assert result.ok, result.error
        assert result.completion_tokens == 5 and result.prompt_tokens > 0
        assert result.attempts == 1 and result.latency_s > 0


@pytest.mark.slow
def test_unreachable_server_is_recorded_not_raised():
    backend = OpenAIBackend(
        "http://127.0.0.1:9/v1", "m", GenerationSettings(),
        retry=RetryPolicy(max_attempts=2, backoff_s=0.01),
    )  # fmt: skip
    [[result]] = list(backend.generate([Request(key="k", prompt="x")]))
    assert not result.ok and result.attempts == 2 and "Connection" in result.error
    assert result.error.endswith("[server http://127.0.0.1:9/v1]")  # which server, in the error


def test_faults_end_done_or_recorded_and_rerun_completes(tmp_path):
    store = CallStore(tmp_path / "calls.sqlite")
    requests = [
        Request(key=f"k{i}", messages=({"role": "user", "content": f"item {i}"},),
                meta={"item_id": str(i)})
        if i % 2 else Request(key=f"k{i}", prompt=f"item {i}", meta={"item_id": str(i)})
        for i in range(40)
    ]  # fmt: skip
    with FaultyServer(fail_share=0.5, seed=1, slow_s=1.0) as server:
        backend = OpenAIBackend(
            server.base_url, "m", GenerationSettings(), concurrency=8,
            retry=RetryPolicy(timeout_s=0.3, max_attempts=3, backoff_s=0.01, backoff_max_s=0.05,
                              server_rest_s=0.5),  # a resting server would idle the test
        )  # fmt: skip
        done = run_step(requests, lambda: backend, store, "draft", progress=False)
        assert set(server.seen) == {"ok", *FaultyServer.MODES}  # every fault was exercised
        calls = store.calls()
        assert len(calls) == 40 and calls["key"].is_unique  # one record per item, no duplicates
        failed = calls.loc[calls["ok"] == 0]
        assert len(done) + len(failed) == 40 and len(failed) > 0
        assert failed["error"].str.len().gt(0).all()
        # transient faults are retried until attempts run out; a malformed body is not retried
        transient = failed["error"].str.contains("Connection|Timeout|RateLimit|InternalServer")
        assert (failed.loc[transient, "attempts"] == 3).all()
        assert failed.loc[~transient, "error"].str.startswith("JSONDecodeError").all()
        assert (failed["attempts"] < 3).any()  # some item stopped at a malformed body
        assert calls["attempts"].max() > 1

        server.fail_share = 0.0
        again = run_step(requests, lambda: backend, store, "draft", progress=False)
        calls = store.calls()
        assert len(again) == 40
        assert len(calls) == 40 + len(failed)  # the re-run called only the failed items
        assert set(calls.iloc[40:]["key"]) == set(failed["key"])
        assert calls.loc[calls["ok"] == 1, "key"].is_unique  # never paid twice


def test_a_dead_server_fails_the_step_loudly_with_its_error(tmp_path):
    store = CallStore(tmp_path / "calls.sqlite")
    backend = OpenAIBackend(
        "http://127.0.0.1:9/v1", "m", GenerationSettings(),
        retry=RetryPolicy(max_attempts=1, backoff_s=0.01),
    )  # fmt: skip
    requests = [Request(key=f"k{i}", prompt=f"item {i}") for i in range(6)]
    with pytest.raises(RuntimeError, match=r"teacher draft: 6 of 6 calls failed with: APIConn"):
        run_step(requests, lambda: backend, store, "draft", progress=False)
    assert len(store.calls()) == 6  # what was tried is on record


def one_call(server, mode: str | list[str], **kwargs):
    server.script = [mode] if isinstance(mode, str) else list(mode)  # then answers
    backend = OpenAIBackend(
        server.base_url, "m", GenerationSettings(max_new_tokens=50), api_key="sk-secret-123",
        retry=RetryPolicy(backoff_s=0.01, backoff_max_s=5.0, **kwargs),
    )  # fmt: skip
    [[result]] = list(backend.generate([Request(key="k", prompt="item")]))
    return result


def test_the_timeout_bounds_the_whole_call_not_each_read():
    with FaultyServer(fail_share=0.0) as server:
        started = time.monotonic()
        result = one_call(server, "trickle", timeout_s=1.0, max_attempts=1)
        assert time.monotonic() - started < 3  # the server trickles for ~20 s
        assert not result.ok and "Timeout" in result.error


def test_retry_after_is_honoured():
    with FaultyServer(fail_share=0.0) as server:
        result = one_call(server, "retryafter", max_attempts=2)
        assert result.ok and result.attempts == 2
        assert server.times[1] - server.times[0] >= 0.95  # it asked for one second


def test_rate_limits_are_waited_out_not_taken_for_a_dead_server():
    with FaultyServer(fail_share=0.0) as server:
        started = time.monotonic()  # more 429s in a row than server_max_failures
        result = one_call(
            server, ["retryafter"] * 4, max_attempts=6, server_max_failures=2, server_rest_s=20
        )
        assert result.ok and result.attempts == 5
        assert time.monotonic() - started < 10  # four 1 s waits, no 20 s rest


def test_an_error_that_is_not_retried_names_the_server_and_a_likely_cause():
    with FaultyServer(fail_share=0.0) as server:
        result = one_call(server, "404", max_attempts=3)
        assert not result.ok and result.attempts == 1
        assert server.base_url in result.error and "does base_url end in /v1" in result.error


def test_an_oversized_answer_is_a_failure_not_a_cached_success():
    with FaultyServer(fail_share=0.0) as server:
        result = one_call(server, "oversized", max_attempts=1)
        assert not result.ok and "more than max_tokens 50 can give" in result.error


def test_an_answer_without_choices_says_so():
    with FaultyServer(fail_share=0.0) as server:
        result = one_call(server, "nochoices", max_attempts=1)
        assert not result.ok and "no choices" in result.error


def test_secrets_a_server_echoes_are_not_stored():
    with FaultyServer(fail_share=0.0) as server:
        result = one_call(server, "echoauth", max_attempts=1)
        assert not result.ok and "sk-secret-123" not in result.error
        assert "[redacted]" in result.error


def test_two_runs_at_once_pay_for_each_prompt_once(tmp_path, monkeypatch):
    import threading

    from product_descgen import step_runner

    monkeypatch.setattr(step_runner, "CLAIM_POLL_S", 0.05)
    requests = [Request(key=f"k{i}", prompt=f"item {i}") for i in range(24)]
    outcomes: dict[str, dict] = {}
    with FaultyServer(fail_share=0.0) as server:
        server.latency_s = 0.05

        def run(name: str) -> None:
            backend = OpenAIBackend(server.base_url, "m", GenerationSettings(), concurrency=4)
            store = CallStore(tmp_path / "calls.sqlite")  # its own run id, the same file
            outcomes[name] = run_step(requests, lambda: backend, store, "draft", False)

        threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        prompts = [body["prompt"] for body in server.bodies]
    assert len(outcomes["a"]) == len(outcomes["b"]) == 24  # both runs end with every prompt
    assert sorted(prompts) == sorted(r.prompt for r in requests)  # each one paid once
    calls = CallStore(tmp_path / "calls.sqlite").calls()
    assert len(calls) == 24 and calls["key"].is_unique


def test_each_answer_is_stored_as_its_call_ends(tmp_path):
    store = CallStore(tmp_path / "calls.sqlite")
    seen_sizes = []
    with FaultyServer(fail_share=0.0) as server:
        server.latency_s = 0.02
        backend = OpenAIBackend(server.base_url, "m", GenerationSettings(), concurrency=2)
        for results in backend.generate([Request(key=f"k{i}", prompt=f"p{i}") for i in range(8)]):
            store.record(results, "draft", "openai", "m")
            seen_sizes.append(len(results))
    assert sum(seen_sizes) == 8 and max(seen_sizes) <= 2  # handed over as calls end


def test_a_slow_store_holds_back_new_calls(tmp_path):
    """While the caller stores (here: sleeps), no call starts beyond ``concurrency`` answers
    awaiting it: a process killed mid-store has paid for at most that many unstored answers."""
    with FaultyServer(fail_share=0.0) as server:
        server.latency_s = 0.01
        backend = OpenAIBackend(server.base_url, "m", GenerationSettings(), concurrency=2)
        taken, unstored = 0, []
        for results in backend.generate([Request(key=f"k{i}", prompt=f"p{i}") for i in range(12)]):
            taken += len(results)
            time.sleep(0.3)  # a store write waiting on a lock
            unstored.append(len(server.answered) - taken)
    assert taken == 12 and len(server.answered) == 12
    assert max(unstored) <= 2, unstored


def test_a_caller_that_stops_early_cancels_the_calls_left(tmp_path):
    import threading

    with FaultyServer(fail_share=0.0) as server:
        server.latency_s = 0.01
        backend = OpenAIBackend(server.base_url, "m", GenerationSettings(), concurrency=2)
        calls = backend.generate([Request(key=f"k{i}", prompt=f"p{i}") for i in range(40)])
        next(calls)
        calls.close()  # e.g. the step failed loudly on its first batch
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            t.name == "openai-calls" for t in threading.enumerate()
        ):
            time.sleep(0.05)
        assert not any(t.name == "openai-calls" for t in threading.enumerate())
        assert len(server.answered) <= 4  # the first batch and the calls then in flight


def test_settings_the_openai_api_cannot_carry_are_said_not_sent(caplog):
    """The teacher's repetition_penalty was silently dropped for a server."""
    with caplog.at_level("WARNING"):
        OpenAIBackend("http://127.0.0.1:9/v1", "teacher", GenerationSettings())
        assert not caplog.text
        OpenAIBackend(
            "http://127.0.0.1:9/v1", "teacher", GenerationSettings(repetition_penalty=1.1)
        )
    assert "teacher: repetition_penalty not sent" in caplog.text


def test_greedy_calls_send_seed_and_top_p_as_the_call_store_keys_them():
    """Greedy answers are stored without seed and top_p (keyed at their defaults): what is sent
    must be that too, or a hosted API could answer a stored prompt differently."""
    with FaultyServer(fail_share=0.0) as server:
        for temperature in (0.0, 0.7):
            settings = GenerationSettings(temperature=temperature, seed=7, top_p=0.5)
            backend = OpenAIBackend(server.base_url, "m", settings)
            list(backend.generate([Request(key="k", prompt="p")]))
    greedy, sampled = ((b["seed"], b["top_p"]) for b in server.bodies)
    assert greedy == (0, 1.0) and sampled == (7, 0.5)
