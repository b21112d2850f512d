"""A report's figures are of one evaluation: the stamps tell a mix apart."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from product_descgen.evaluation.stamp import (
    ADAPTER_COLUMN,
    STAMP,
    STUDENT_COLUMN,
    require_one_evaluation,
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
