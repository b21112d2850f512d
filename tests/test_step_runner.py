"""The resumable step runner: systematic failures fail the step loudly; per-row problems, and
rows that keep failing the same way on a re-run, do not."""

from __future__ import annotations

import pytest

from product_descgen.callstore import CallStore
from product_descgen.llm.types import Request, Result
from product_descgen.step_runner import FailureWatch, run_step


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


def test_a_step_that_leaves_rows_failed_says_so(tmp_path, caplog):
    store, backend = CallStore(tmp_path / "calls.sqlite"), Scripted()
    with caplog.at_level("WARNING"):  # half failing is not most: the step goes on, and says so
        done = run_step(requests(4, 4), lambda: backend, store, "draft", progress=False)
    assert len(done) == 4
    assert "teacher draft: 4 of 8 calls failed (4 with: BadRequestError" in caplog.text
    assert "a re-run retries them" in caplog.text


def test_a_dead_server_still_fails_a_re_run_loudly(tmp_path):
    store, backend = CallStore(tmp_path / "calls.sqlite"), Scripted()
    todo = requests(20, 2)
    run_step(todo[:10] + todo[20:], lambda: backend, store, "draft", progress=False)
    backend.down = True  # the re-run meets a dead server: the bad rows fail another way
    with pytest.raises(RuntimeError, match="8 of 8 calls failed with: APIConnectionError"):
        run_step(todo, lambda: backend, store, "draft", progress=False)


def test_a_server_that_died_in_a_small_step_fails_it_and_every_re_run(tmp_path):
    """7 calls, the server dead after 3: the step passed (under 8 calls only all failing
    counted), and each re-run excused the connection errors as the rows' own problems."""

    class DiesAfter(Scripted):
        def generate(self, requests):
            for r in requests:
                self.down = self.down or len(self.asked) >= 3
                yield from super().generate([r])

    store, backend = CallStore(tmp_path / "calls.sqlite"), DiesAfter()
    todo = requests(7, 0)
    # the run, then a re-run with the server still down
    for failed in ("4 of 7 calls", "4 of 4 calls"):
        with pytest.raises(RuntimeError, match=f"{failed} failed with: APIConnectionError"):
            run_step(todo, lambda: backend, store, "refine", progress=False)
    assert len(store.done(r.key for r in todo)) == 3


def test_an_interrupted_step_says_what_it_stored_and_releases_its_claims(tmp_path, caplog):
    store, backend = CallStore(tmp_path / "calls.sqlite"), Scripted()
    todo = requests(6, 0)
    run_step(todo[:2], lambda: backend, store, "draft", progress=False)

    class Interrupted(Scripted):
        def generate(self, requests):
            for i, batch in enumerate(super().generate(requests)):
                if i == 3:
                    raise KeyboardInterrupt  # Ctrl-C after three answers
                yield batch

    with caplog.at_level("WARNING"), pytest.raises(KeyboardInterrupt):
        run_step(todo, Interrupted, store, "draft", progress=False, label="describe")
    assert (
        "describe interrupted: 3 answers of this run stored, 5 of 6 requests done; a re-run "
        "resumes from there" in caplog.text
    )
    assert store.claim(r.key for r in todo) == {"ok5"}  # the interrupted run holds nothing


def results(*errors: str | None) -> list[Result]:
    return [Result(key=str(i), text=None if e else "ok", error=e) for i, e in enumerate(errors)]


def raise_if_systematic(
    rows: list[Result], what: str, min_rows: int = 8, final: bool = True
) -> None:
    FailureWatch(what, min_rows).add(rows, final=final)


def test_most_rows_failing_with_one_error_is_systematic():
    with pytest.raises(RuntimeError, match="gen: 3 of 5 calls failed with: CUDA out of memory"):
        raise_if_systematic(results(*["CUDA out of memory"] * 3, None, None), "gen", min_rows=4)


def test_every_row_failing_is_systematic_however_few():
    with pytest.raises(RuntimeError, match="1 of 1 calls"):
        raise_if_systematic(results("boom"), "gen")


@pytest.mark.parametrize(
    "errors",
    [
        (None, None, None, None),
        ("a", "a", None, None),  # half is not most
        ("a", "b", "c", None, None),  # many rows failing, each its own way
        ("a", None),  # too few rows to call it systematic
    ],
)
def test_per_row_problems_are_not_systematic(errors):
    raise_if_systematic(results(*errors), "gen", min_rows=4)


def test_while_calls_are_ending_a_few_failures_are_not_judged_yet():
    raise_if_systematic(results("boom"), "gen", final=False)  # the first call of many
    with pytest.raises(RuntimeError, match="5 of 8 calls"):
        raise_if_systematic(results(*["boom"] * 5, None, None, None), "gen", final=False)


def test_counts_add_up_over_batches_as_they_arrive():
    watch = FailureWatch("gen", min_rows=4)
    watch.add(results("boom", None))  # 1 of 2: too early to judge
    watch.add(results(None, None))  # 1 of 4: per-row
    with pytest.raises(RuntimeError, match="gen: 4 of 7 calls failed with: boom"):
        watch.add(results("boom", "boom", "boom"))


def test_a_server_dying_part_way_fails_the_step_at_its_streak():
    """Half a step done, then every call failing with one error: a dead server, however many
    calls succeeded before it died."""
    watch = FailureWatch("teacher draft")
    watch.add(results(*[None] * 100))
    watch.add(results(*["APIConnectionError: Connection error."] * 31))  # not yet
    with pytest.raises(RuntimeError, match="the last 32 calls failed with: APIConnectionError"):
        watch.add(results("APIConnectionError: Connection error."))


def test_failures_between_successes_are_no_streak():
    watch = FailureWatch("gen")
    for _ in range(40):
        watch.add(results("bad row", None, None))  # a third failing, one error, never in a row
    watch.check()
