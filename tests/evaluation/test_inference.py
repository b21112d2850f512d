"""Student generation over many rows: results in request order, systematic failures loud."""

from __future__ import annotations

import pytest

from product_descgen.evaluation.inference import generate_all, results_frame
from product_descgen.llm.types import Request, Result


class ScriptedBackend:
    """Answers each request with the error its key names (``ok`` keys succeed)."""

    name, model_id = "scripted", "m"

    def generate(self, requests):
        for start in range(0, len(requests), 2):
            yield [
                Result(key=r.key, text="fine" if r.key.startswith("ok") else None,
                       error=None if r.key.startswith("ok") else r.key.split("-")[0])
                for r in requests[start : start + 2]
            ]  # fmt: skip


def requests(*keys: str) -> list[Request]:
    return [Request(key=k, prompt=k) for k in keys]


def test_a_per_row_failure_is_kept_on_its_row_in_request_order():
    out = generate_all(ScriptedBackend(), requests("ok-1", "bad-2", "ok-3", "ok-4"), "student")
    frame = results_frame(out)
    assert frame["product_id"].tolist() == ["ok-1", "bad-2", "ok-3", "ok-4"]
    assert frame["error"].fillna("").tolist() == ["", "bad", "", ""]


def test_most_rows_failing_with_one_error_fails_the_call():
    keys = ("ok-1", *(f"oom-{i}" for i in range(2, 9)), "ok-9", "ok-10")
    with pytest.raises(RuntimeError, match="student: 7 of 8 calls failed with: oom"):
        generate_all(ScriptedBackend(), requests(*keys), "student", progress=False)
