"""The report's checks and notes: a report is of one training and one evaluation, and says what a
reader must know beside the figures."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from product_descgen.evaluation.stamp import HISTORY_KEY, history_digest, texts_stamp
from product_descgen.pipelines.reporting.nodes import (
    ReportingParams,
    check_one_evaluation,
    check_one_training,
    collect_key_metrics,
    write_report_notes,
)
from product_descgen.training.contract import CONTRACT_FILE

RATED = {"n_judgments": 40}


def notes(eval_metrics: dict, speed_summary: dict) -> list[str]:
    evaluation = {
        "eval_metrics": eval_metrics, "speed_summary": speed_summary, "human_preference": RATED
    }  # fmt: skip
    return write_report_notes(evaluation, {}, ReportingParams())


def test_too_few_speed_test_products_make_the_speed_figures_indicative():
    sample = {"products": 8, "rounds": 3, "min_products": 64, "enough": False}
    found = notes({}, {"headline": ["Throughput: 5.2x"], "sample": sample})
    assert found[0] == (
        "Speed, memory and cost measured on 8 products, fewer than the 64 the comparison needs "
        "(evaluation.speed.min_products): those figures are indicative only (with few products "
        "in flight the throughput ratio has read higher than on 64: docs/benchmarks.md)."
    )
    assert found[1] == "Throughput: 5.2x"
    enough = {"headline": ["Throughput: 5.2x"], "sample": sample | {"products": 64, "enough": True}}
    assert notes({}, enough) == ["Throughput: 5.2x"]


def test_too_few_test_products_make_the_quality_figures_indicative():
    size = {"test_items": 3, "min_test_items": 30, "enough": False}
    found = notes({"size": size}, {"headline": []})
    assert len(found) == 1 and found[0].startswith("Evaluated on 3 test products, fewer than")


def test_the_gate_pass_rates_say_what_the_teachers_quality_figures_are_of():
    rates = {"teacher_gate_pass_rate": 0.25, "student_gate_pass_rate": 0.625}
    found = notes({}, rates | {"gate_noise_band": 0.466})
    assert found == [
        "The quality figures compare texts on test products whose teacher text passed the "
        "quality gate, so the teacher's are of its accepted texts only. Of the texts both "
        "systems wrote in the speed test (their own generation, not the distillation set's: "
        "speed_outputs) the gate passed 25% of the teacher pipeline's and 62% of the "
        "student's (a difference within ±47% is noise)."
    ]
    assert notes({}, rates)[0].endswith("62% of the student's.")  # a summary without a band


def test_mlflow_metrics_carry_the_gate_rates_and_the_sample_sizes_they_stand_on():
    speed = {"throughput_ratio": 4.1, "memory_reduction": 0.43, "cost_reduction": 0.76,
             "tokens_per_s_ratio": 2.2, "teacher_gate_pass_rate": 0.25,
             "student_gate_pass_rate": 0.5, "gate_noise_band": 0.47,
             "sample": {"products": 8, "min_products": 64, "enough": False}}  # fmt: skip
    metrics = {"overall": {"student": {"rouge_l": 0.2}},
               "size": {"test_items": 2, "min_test_items": 30, "enough": False}}  # fmt: skip
    evaluation = {"speed_summary": speed, "eval_metrics": metrics, "human_preference": {},
                  "judge_preference": {}}  # fmt: skip
    logged = {k: v["value"] for k, v in collect_key_metrics(evaluation).items()}
    assert logged["speed.student_gate_pass_rate"] == 0.5
    assert logged["speed.gate_noise_band"] == 0.47
    assert (logged["speed.products"], logged["speed.enough"]) == (8, 0)
    assert (logged["quality.test_items"], logged["quality.enough"]) == (2, 0)
    assert logged["quality.student.rouge_l"] == 0.2


def test_the_training_charted_is_the_one_that_wrote_the_newest_adapter(tmp_path):
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [2.0, 1.5]})
    stamp = {HISTORY_KEY: history_digest(history)}
    (tmp_path / CONTRACT_FILE).write_text(json.dumps({"stop": ["###"], **stamp}))
    checked, vices = check_one_training(str(tmp_path), history, {"epochs": 2, **stamp})
    assert checked is history and vices["epochs"] == 2
    with pytest.raises(ValueError, match=r"not of the training that wrote student_adapter \("):
        check_one_training(str(tmp_path), history.iloc[:1], {})


def test_the_evaluation_reported_is_one_of_these_texts_and_references(tmp_path):
    outputs = pd.DataFrame({"product_id": ["a"], "text": ["A red mug."]})
    eval_set = pd.DataFrame({"product_id": ["a"], "reference": ["A mug in red."]})
    scored = texts_stamp(outputs, eval_set)
    summaries = {
        "eval_metrics": scored, "speed_summary": {}, "human_preference": scored,
        "judge_preference": scored,
    }  # fmt: skip
    adapter = str(tmp_path)  # no fingerprint kept in the outputs: any adapter passes
    assert check_one_evaluation(outputs, adapter, eval_set, **summaries) == summaries
    newer = eval_set.assign(reference=["A tall red mug."])
    with pytest.raises(ValueError, match=r"^eval_metrics, human_preference, judge_preference were"):
        check_one_evaluation(outputs, adapter, newer, **summaries)
    with pytest.raises(TypeError, match=r"takes the summaries"):
        check_one_evaluation(outputs, adapter, eval_set, **summaries, judge_verdicts={})
