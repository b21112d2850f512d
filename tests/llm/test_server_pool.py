"""Teacher calls spread over several OpenAI-compatible servers: a failing server rests and is
tried again later; with one of two real servers killed mid-run, every prompt is still stored
exactly once."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from product_descgen.callstore import CallStore
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.llm.openai_backend import OpenAIBackend, RetryPolicy
from product_descgen.llm.server_pool import Server, ServerPool
from product_descgen.llm.types import GenerationSettings, Request
from product_descgen.step_runner import run_step
from tests.servers import FaultyServer, free_port, start_transformers_serve, stop_process


def test_a_failing_server_rests_then_is_tried_again():
    async def scenario() -> list[str]:
        pool = ServerPool([Server("a", None), Server("b", None)], 2, max_failures=2, rest_s=0.2)
        seen = []
        for _ in range(2):  # b fails twice in a row: it rests
            first, second = await pool.acquire(), await pool.acquire()
            assert (first.url, second.url) == ("a", "b")  # the least busy server first
            await pool.release(first, failed=False)
            await pool.release(second, failed=True)
        for _ in range(4):  # while b rests, only a is given out, up to its slots
            server = await pool.acquire()
            seen.append(server.url)
            await pool.release(server, failed=False)
        await asyncio.sleep(0.25)  # b's rest is over: it is tried again
        again = [await pool.acquire(), await pool.acquire()]
        seen.append("".join(sorted(s.url for s in again)))
        return seen

    assert asyncio.run(scenario()) == ["a", "a", "a", "a", "ab"]


def test_a_rest_is_said_once_not_at_every_failure(caplog):
    async def scenario() -> None:
        pool = ServerPool([Server("a", None)], 4, max_failures=2, rest_s=0.2)
        held = [await pool.acquire() for _ in range(4)]  # four calls in flight, all failing
        for server in held:
            await pool.release(server, failed=True)

    with caplog.at_level("WARNING"):
        asyncio.run(scenario())
    assert caplog.text.count("resting") == 1


def test_all_servers_resting_waits_for_the_first_rest_to_end():
    async def scenario() -> float:
        pool = ServerPool([Server("a", None)], 1, max_failures=1, rest_s=0.3)
        server = await pool.acquire()
        await pool.release(server, failed=True)
        started = time.monotonic()
        await pool.acquire()
        return time.monotonic() - started

    assert 0.25 <= asyncio.run(scenario()) < 2


def test_calls_go_around_a_dead_server(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    with FaultyServer(fail_share=0.0) as server:
        backend = OpenAIBackend(
            [dead, server.base_url], "m", GenerationSettings(max_new_tokens=5), concurrency=2,
            retry=RetryPolicy(max_attempts=4, backoff_s=0.01, backoff_max_s=0.05,
                              server_max_failures=2, server_rest_s=60),
        )  # fmt: skip
        requests = [Request(key=f"k{i}", prompt=f"item {i}") for i in range(20)]
        results = [r for batch in backend.generate(requests) for r in batch]
    assert len(results) == 20 and all(r.ok for r in results)
    # The dead server rests after 2 failures in a row; a call it already held when the second
    # failed (concurrency 2: at most one more) fails too. Without the rest, about half of the
    # 20 calls would go there first.
    assert sum(r.attempts > 1 for r in results) <= 2 + (2 - 1)


def test_a_server_answering_429_is_paused_and_the_calls_go_to_the_others():
    with FaultyServer(fail_share=1.0, modes=("retryafter",)) as busy, FaultyServer(0.0) as free:
        backend = OpenAIBackend(
            [busy.base_url, free.base_url], "m", GenerationSettings(max_new_tokens=5),
            concurrency=2, retry=RetryPolicy(max_attempts=5, backoff_s=0.01, backoff_max_s=2.0),
        )  # fmt: skip
        requests = [Request(key=f"k{i}", prompt=f"item {i}") for i in range(20)]
        results = [r for batch in backend.generate(requests) for r in batch]
    # paused after each 429 and rested (30 s) after three, as another server is up: a 429 not
    # counted against the server let it draw the retries (they failed)
    assert all(r.ok for r in results)
    assert busy.seen["retryafter"] <= 4 and len(free.answered) == 20


def test_one_cause_on_several_servers_fails_the_step_as_one_error(tmp_path):
    servers = [FaultyServer(fail_share=1.0, modes=("404",)) for _ in range(3)]
    for server in servers:
        server.__enter__()
    try:
        backend = OpenAIBackend(
            [s.base_url for s in servers], "m", GenerationSettings(max_new_tokens=5),
            retry=RetryPolicy(max_attempts=1),
        )  # fmt: skip
        store = CallStore(tmp_path / "calls.sqlite")
        requests = [Request(key=f"k{i}", prompt=f"item {i}") for i in range(12)]
        with pytest.raises(RuntimeError, match=r"calls failed with: NotFoundError.*\[server"):
            run_step(requests, lambda: backend, store, "draft", progress=False)
    finally:
        for server in servers:
            server.__exit__(None, None, None)


def test_several_servers_in_one_setting():
    connection = Connection(backend="openai", model="m", base_url="http://a/v1, http://b/v1")
    assert connection.base_url == ["http://a/v1", "http://b/v1"]
    backend = make_backend(connection, None, GenerationSettings())
    assert backend.base_urls == ["http://a/v1", "http://b/v1"]


@pytest.mark.slow
def test_one_of_two_real_servers_killed_mid_run_every_prompt_stored_once(tmp_path, tiny_model_dir):
    first, first_proc = start_transformers_serve(tiny_model_dir, tmp_path / "first.log")
    second, second_proc = start_transformers_serve(tiny_model_dir, tmp_path / "second.log")
    store = CallStore(tmp_path / "calls.sqlite")
    requests = [Request(key=f"k{i}", prompt=f"Describe item {i}:") for i in range(60)]
    try:
        connection = Connection(
            backend="openai", model=str(tiny_model_dir), base_url=[first, second],
            concurrency=2, timeout_s=30, backoff_s=0.05, backoff_max_s=0.5, server_rest_s=300,
        )  # fmt: skip
        settings = GenerationSettings(max_new_tokens=24)
        done: dict = {}
        runner = threading.Thread(
            target=lambda: done.update(
                run_step(
                    requests,
                    lambda: make_backend(connection, None, settings),
                    store,
                    "draft",
                    progress=False,
                )  # fmt: skip
            )
        )
        runner.start()
        deadline = time.monotonic() + 120
        while len(store.calls()) < 8 and time.monotonic() < deadline and runner.is_alive():
            time.sleep(0.05)
        assert runner.is_alive(), "the run ended before a server could be killed"
        second_proc.send_signal(signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
    finally:
        stop_process(first_proc)
        stop_process(second_proc)
    calls = store.calls()
    assert len(done) == 60 and calls["ok"].astype(bool).all()
    assert calls["key"].is_unique and set(calls["key"]) == {r.key for r in requests}
    assert "POST /v1/completions" in (tmp_path / "second.log").read_text()  # it served some
    again = run_step(requests, lambda: pytest.fail("nothing is left to pay for"), store, "draft")
    assert set(again) == set(done)
