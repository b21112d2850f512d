"""The resumable step runner: rows that keep failing the same way do not block a re-run."""

from __future__ import annotations

import pytest

from product_descgen.callstore import CallStore
from product_descgen.llm.types import Request, Result
from product_descgen.teacher.generate import run_step


class Scripted:
    """Fails prompts holding "too long" with a 400, everything with ``down`` set, else answers."""

    name, model_id = "scripted", "m"

    def __init__(self) -> None:
        self.down = False
        self.asked: list[str] = []

    def generate(self, requests):
        for r in requests:
            self.asked.append(r.key)
            error = (
                "APIConnectionError: Connection error."
                if self.down
                else "BadRequestError: Error code: 400 - prompt too long"
                if "too long" in r.prompt
                else None
            )
            yield [Result(key=r.key, text=None if error else "ok", error=error, meta=r.meta)]


def requests(n_ok: int, n_bad: int) -> list[Request]:
    return [Request(key=f"ok{i}", prompt=f"item {i}") for i in range(n_ok)] + [
        Request(key=f"bad{i}", prompt=f"item {i} too long") for i in range(n_bad)
    ]


def test_rows_failing_again_as_before_do_not_fail_the_re_run(tmp_path, caplog):
    store, backend = CallStore(tmp_path / "calls.sqlite"), Scripted()
    todo = requests(20, 2)
    assert len(run_step(todo, lambda: backend, store, "draft", progress=False)) == 20
    with caplog.at_level("WARNING"):
        done = run_step(todo, lambda: backend, store, "draft", progress=False)
    assert len(done) == 20 and backend.asked[22:] == ["bad0", "bad1"]  # retried, not paid twice
    assert "2 rows failed again with the error of an earlier run" in caplog.text


def test_a_dead_server_still_fails_a_re_run_loudly(tmp_path):
    store, backend = CallStore(tmp_path / "calls.sqlite"), Scripted()
    todo = requests(20, 2)
    run_step(todo[:10] + todo[20:], lambda: backend, store, "draft", progress=False)
    backend.down = True  # the re-run meets a dead server: the bad rows fail another way
    with pytest.raises(RuntimeError, match="8 of 8 calls failed with: APIConnectionError"):
        run_step(todo, lambda: backend, store, "draft", progress=False)
