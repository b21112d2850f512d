"""A report's figures are of one evaluation: the stamps tell a mix apart."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from product_descgen.evaluation.stamp import (
    ADAPTER_COLUMN,
    HISTORY_KEY,
    STAMP,
    STUDENT_COLUMN,
    history_digest,
    require_one_evaluation,
    require_one_training,
    require_trained_student,
    texts_digest,
    texts_stamp,
)

OUTPUTS = pd.DataFrame(
    {"product_id": ["a", "b"], "text": ["Red mug.", None], STUDENT_COLUMN: ["s1", "s1"]}
)


def test_the_texts_digest_ignores_row_order_and_sees_any_changed_text():
    assert texts_digest(OUTPUTS) == texts_digest(OUTPUTS.iloc[::-1])
    changed = OUTPUTS.assign(text=["Red mug!", None])
    assert texts_digest(changed) != texts_digest(OUTPUTS)


def test_summaries_of_other_texts_or_another_student_are_refused():
    same = texts_stamp(OUTPUTS)
    require_one_evaluation(OUTPUTS, {"eval_metrics": same, "speed": {STAMP: {"student": "s1"}}})
    older = texts_stamp(OUTPUTS.assign(text=["Old mug.", None]))
    with pytest.raises(ValueError, match=r"^judge_preference were computed for other"):
        require_one_evaluation(OUTPUTS, {"eval_metrics": same, "judge_preference": older})
    with pytest.raises(ValueError, match=r"^speed_summary were"):
        require_one_evaluation(OUTPUTS, {"speed_summary": {STAMP: {"student": "s0"}}})


def test_summaries_scored_against_other_teacher_references_are_refused():
    """An evaluation run stopped after rebuilding eval_set (a teacher_generation re-run wrote
    new references) leaves metrics scored against the earlier ones."""
    eval_set = pd.DataFrame({"product_id": ["a", "b"], "reference": ["A red mug.", "A jug."]})
    scored = texts_stamp(OUTPUTS, eval_set)
    require_one_evaluation(OUTPUTS, {"eval_metrics": scored}, eval_set.iloc[::-1])
    require_one_evaluation(OUTPUTS, {"eval_metrics": scored})  # references not shown: not asked
    newer = eval_set.assign(reference=["A red mug.", "A tall jug."])
    with pytest.raises(ValueError, match=r"^eval_metrics were computed for .*other teacher ref"):
        require_one_evaluation(OUTPUTS, {"eval_metrics": scored}, newer)
    speed = {"speed_summary": {STAMP: {"student": "s1"}}}  # compares no references
    require_one_evaluation(OUTPUTS, speed, newer)


def test_unstamped_summaries_are_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        require_one_evaluation(OUTPUTS, {"eval_metrics": {"overall": {}}})
    assert "eval_metrics carry no evaluation stamp" in caplog.text


def test_outputs_of_an_earlier_trained_student_than_the_newest_adapter_are_refused():
    """A finetune run after the evaluation, then reporting alone: the report showed the new
    training's charts beside the earlier student's figures."""
    evaluated = OUTPUTS.assign(**{ADAPTER_COLUMN: "adapter-1"})
    require_trained_student(evaluated, "adapter-1")
    with pytest.raises(ValueError, match=r"another trained student than the newest"):
        require_trained_student(evaluated, "adapter-2")
    require_trained_student(OUTPUTS, "adapter-2")  # written before the column was kept
    require_trained_student(evaluated.assign(**{ADAPTER_COLUMN: None}), "adapter-2")


HISTORY = pd.DataFrame(
    {"epoch": [1, 2], "train_loss": [2.0 / 3, 1.5], "flags": ["same_opening", ""],
     "flagged": [True, False], "top_phrase": [None, "is made for"]}
)  # fmt: skip


def test_the_history_digest_survives_parquet_and_sees_another_training(tmp_path):
    HISTORY.to_parquet(tmp_path / "history.parquet")
    assert history_digest(pd.read_parquet(tmp_path / "history.parquet")) == history_digest(HISTORY)
    assert history_digest(HISTORY.assign(train_loss=[2.0 / 3, 1.4])) != history_digest(HISTORY)
    assert history_digest(HISTORY.iloc[:1]) != history_digest(HISTORY)


def test_a_history_or_vice_report_of_another_training_than_the_adapter_is_refused():
    """A finetune run stopped after saving its adapter leaves the history and vice report of
    the run before: the report charted one training beside another's student."""
    mine = {HISTORY_KEY: history_digest(HISTORY)}
    require_one_training(mine, HISTORY, mine)
    require_one_training(None, HISTORY, {})  # written before the digest was kept
    earlier = HISTORY.iloc[:1]
    with pytest.raises(ValueError, match=r"^training_history is not of the training that wrote "
                       r"student_adapter and vice_report \(a finetune run stopped"):  # fmt: skip
        require_one_training(mine, earlier, mine)
    with pytest.raises(ValueError, match=r"wrote vice_report \("):
        require_one_training(mine, HISTORY, {HISTORY_KEY: history_digest(earlier)})
