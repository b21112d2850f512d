"""Student generation over many rows: results in request order, systematic failures loud."""

from __future__ import annotations

import dataclasses

import pytest

from product_descgen.callstore import CallStore
from product_descgen.evaluation.inference import stored_results
from product_descgen.llm.types import Request, Result
from product_descgen.step_runner import keyed


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
    """Requests whose prompts name their fate (ScriptedBackend reads the key it is given)."""
    return [dataclasses.replace(r, key=r.prompt) for r in keyed(
        [Request(key=k, prompt=k) for k in keys], model="m"
    )]  # fmt: skip


def test_a_per_row_failure_is_kept_on_its_row_in_request_order(tmp_path):
    store = CallStore(tmp_path / "calls.sqlite")
    frame = stored_results(
        requests("ok-1", "bad-2", "ok-3", "ok-4"), ScriptedBackend, store, "student", False
    )
    assert frame["product_id"].tolist() == ["ok-1", "bad-2", "ok-3", "ok-4"]
    assert frame["error"].fillna("").tolist() == ["", "bad", "", ""]


def test_most_rows_failing_with_one_error_fails_the_call(tmp_path):
    keys = ("ok-1", *(f"oom-{i}" for i in range(2, 9)), "ok-9", "ok-10")
    with pytest.raises(RuntimeError, match="student: 7 of 8 calls failed with: oom"):
        stored_results(
            requests(*keys), ScriptedBackend, CallStore(tmp_path / "c"), "student", False
        )


class CountingBackend:
    """Answers each prompt with its own text; dies after ``die_after`` answers if given."""

    name, model_id = "counting", "m"

    def __init__(self, asked: list[str], die_after: int | None = None) -> None:
        self.asked, self.die_after = asked, die_after

    def generate(self, requests):
        for r in requests:
            if self.die_after is not None and len(self.asked) >= self.die_after:
                raise KeyboardInterrupt  # the run is stopped part way
            self.asked.append(r.prompt)
            ok = "fail" not in r.prompt
            yield [Result(key=r.key, text=f"about {r.prompt}" if ok else None,
                          error=None if ok else "bad row", prompt_tokens=3,
                          completion_tokens=2, finish_reason="stop", meta=r.meta)]  # fmt: skip


def served(adapter: str = "adapters/v1"):
    from product_descgen.evaluation.inference import ServedStudent
    from product_descgen.llm.backends import Connection
    from product_descgen.llm.types import GenerationSettings

    return ServedStudent(
        connection=Connection(backend="transformers", model_dir="base"), model_dir="base",
        adapter=adapter, template="{input_text}", settings=GenerationSettings(),
    )  # fmt: skip


def items(*texts: str):
    import pandas as pd

    return pd.DataFrame({"product_id": [f"P{i}" for i in range(len(texts))], "input_text": texts})


@pytest.fixture
def student_run(tmp_path, monkeypatch):
    """run_student with a counting backend and a store in tmp_path; returns (run, asked)."""
    from product_descgen.callstore import CallStore
    from product_descgen.evaluation import inference

    asked: list[str] = []
    die_after: list[int | None] = [None]
    monkeypatch.setattr(
        inference, "make_backend", lambda *a, **k: CountingBackend(asked, die_after[0])
    )
    store = CallStore(tmp_path / "student_calls.sqlite")

    def run(frame, student=None, stop_after=None):
        die_after[0] = stop_after
        return inference.run_student(frame, student or served(), store, "describe", False)

    return run, asked


def test_a_stopped_run_resumes_and_pays_nothing_twice(student_run):
    run, asked = student_run
    catalogue = items("mug", "lamp", "kettle", "fail me", "rug")
    with pytest.raises(KeyboardInterrupt):
        run(catalogue, stop_after=2)
    assert asked == ["mug", "lamp"]  # both stored as they came
    frame = run(catalogue)
    assert asked == ["mug", "lamp", "kettle", "fail me", "rug"]
    assert frame["product_id"].tolist() == ["P0", "P1", "P2", "P3", "P4"]
    texts = frame["text"].fillna("").tolist()
    assert texts == ["about mug", "about lamp", "about kettle", "", "about rug"]
    assert frame["error"].fillna("").tolist() == ["", "", "", "bad row", ""]
    assert frame.loc[0, "completion_tokens"] == 2 and frame.loc[3, "completion_tokens"] == 0
    again = run(catalogue.iloc[::-1])  # describe after evaluation: only the failure is asked
    assert asked[5:] == ["fail me"]
    assert again.set_index("product_id")["text"].fillna("").to_dict() == dict(
        zip(frame["product_id"], texts, strict=True)
    )


def test_a_retrained_student_or_other_settings_answer_anew(student_run):
    from product_descgen.llm.types import GenerationSettings

    run, asked = student_run
    run(items("mug"))
    run(items("mug"), served("adapters/v2"))  # a new version of the trained student
    longer = served().model_copy(update={"settings": GenerationSettings(max_new_tokens=99)})
    run(items("mug"), longer)
    run(items("mug"))
    assert asked == ["mug", "mug", "mug"]


def test_the_same_trained_student_moved_elsewhere_keeps_its_answers(student_run, tmp_path):
    """The key holds the student's files, not their path: a data folder copied or moved (a new
    checkout, a backup restored) must not pay for every answer again (or change its texts)."""
    import shutil

    run, asked = student_run
    adapter = tmp_path / "here" / "student_adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"lora weights")
    run(items("mug"), served(str(adapter)))
    moved = tmp_path / "there" / "student_adapter"
    shutil.copytree(adapter, moved)
    run(items("mug"), served(str(moved)))
    assert asked == ["mug"]
    (moved / "adapter_model.safetensors").write_bytes(b"other weights")  # retrained in place
    run(items("mug"), served(str(moved)))
    assert asked == ["mug", "mug"]
