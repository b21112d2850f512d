"""Soak, bounded and on loopback: a misbehaving OpenAI-compatible server, two runs at once (one
of them SIGKILLed), then a re-run. Every prompt ends stored exactly once as a success; no prompt
is paid twice except calls in flight when the run was killed (the backend starts no call while
``concurrency`` answers wait to be stored). The client's timeout is well above a valid answer's
time on a loaded 2-core machine: an answer that arrives after it is paid twice by design."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from product_descgen.callstore import CallStore
from product_descgen.llm.openai_backend import OpenAIBackend, RetryPolicy
from product_descgen.llm.types import GenerationSettings, Request
from product_descgen.step_runner import run_step
from tests.servers import FaultyServer

N = 60
CONCURRENCY = 4
MODES = ("500", "retryafter", "timeout", "drop", "badjson", "oversized", "nochoices")
ROOT = Path(__file__).resolve().parents[2]
KILLED_RUN = """
import sys
sys.path.insert(0, {root!r})
from product_descgen.callstore import CallStore
from product_descgen import step_runner
from tests.llm.test_soak import backend, requests
step_runner.CLAIM_POLL_S = 0.1
step_runner.run_step(requests(), lambda: backend({url!r}), CallStore({db!r}, claim_ttl_s=2.0),
                     "draft", False)
"""


def requests() -> list[Request]:
    return [Request(key=f"k{i}", prompt=f"item {i}") for i in range(N)]


def backend(base_url: str) -> OpenAIBackend:
    """The backend of both runs (the killed one imports it)."""
    return OpenAIBackend(
        base_url, "m", GenerationSettings(max_new_tokens=50), concurrency=CONCURRENCY,
        retry=RetryPolicy(timeout_s=1.0, max_attempts=3, backoff_s=0.01, backoff_max_s=1.0,
                          server_rest_s=0.5),
    )  # fmt: skip


def test_faults_two_runs_and_a_kill_end_with_every_prompt_stored_once(tmp_path, monkeypatch):
    from product_descgen import step_runner

    monkeypatch.setattr(step_runner, "CLAIM_POLL_S", 0.1)  # as the killed run's script sets it
    db = tmp_path / "calls.sqlite"
    with FaultyServer(fail_share=0.35, seed=3, slow_s=2.0, modes=MODES) as server:
        server.latency_s = 0.05
        server.script = list(MODES)  # each fault at least once, then at random
        code = KILLED_RUN.format(root=str(ROOT), url=server.base_url, db=str(db))
        killed = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not db.exists() or len(CallStore(db).calls()) < 8):
            time.sleep(0.05)
        assert killed.poll() is None, killed.stderr.read()[-2000:]

        done: dict[str, dict] = {}
        other = threading.Thread(
            target=lambda: done.update(
                run_step(
                    requests(),
                    lambda: backend(server.base_url),
                    CallStore(db, claim_ttl_s=2.0),
                    "draft",
                    False,
                )
            )  # fmt: skip
        )
        other.start()
        time.sleep(0.5)  # both runs at work
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        other.join(timeout=120)
        assert not other.is_alive()
        assert set(server.seen) >= {"ok", *MODES}  # every fault was served

        calls = CallStore(db).calls()
        assert set(calls["key"]) == {r.key for r in requests()}  # every prompt has a record
        assert calls.loc[calls["ok"] == 1, "key"].is_unique  # no success stored twice
        paid = Counter(server.answered)
        assert sum(n - 1 for n in paid.values()) <= CONCURRENCY  # only calls in flight at the kill

        server.fail_share = 0.0
        again = run_step(
            requests(), lambda: backend(server.base_url), CallStore(db), "draft", False
        )
        assert len(again) == N  # the re-run completed the rest
        calls = CallStore(db).calls()
        assert calls.loc[calls["ok"] == 1, "key"].is_unique
        assert sum(n - 1 for n in Counter(server.answered).values()) <= CONCURRENCY
