"""evaluation end to end on the tiny model: real datasets, real subprocesses, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from product_descgen.evaluation.ratings import UNKNOWN_ITEM
from product_descgen.llm.openvino_compat import applied_precision
from product_descgen.project_config import load_project_params
from product_descgen.runtime import threads
from tests.pipelines.evaluation.fixtures import (
    serve_student_in_float32,
    write_adapter,
    write_model_exports,
    write_student_openvino,
    write_test_sets,
)
from tests.pipelines.helpers import override_connection, run_pipeline


def small_evaluation(project, pairs: int = 1) -> dict:
    """Small settings; one speed round unless a test checks the rounds (each is two processes)."""
    params = load_project_params(root=project)["evaluation"]
    # Sampled: a random tiny model's greedy choice may be a special token, decoded as nothing.
    short = {"max_new_tokens": 12, "temperature": 1.0, "seed": 0}
    speed = {**params["speed"], "sample_size": 3, "warmup_size": 1, "pairs": pairs}
    return {
        **params, "student_generation": short, "baseline_generation": short, "speed": speed,
        "human_eval": {**params["human_eval"], "n_items": 3}, "progress": False,
    }  # fmt: skip


def speed_teacher_in_f32(project: Path) -> None:
    """conf/local: the speed test's teacher served otherwise than teacher_generation's."""
    connection = {"backend": "openvino", "weights": "int8", "precision": "f32"}
    override_connection(
        project, "catalog_evaluation.yml", "speed_teacher_llm", connection, "teacher"
    )


def small_teacher(project) -> dict:
    params = load_project_params(root=project)["teacher_generation"]
    return {**params, "draft": {"max_new_tokens": 8}, "refine": {"max_new_tokens": 8}}


def check_judge_outputs(data: Path, n: int) -> None:
    verdicts = pd.read_parquet(data / "08_reporting" / "judge_verdicts.parquet")
    assert len(verdicts) == n
    valid = verdicts["valid"].astype(bool)
    assert set(verdicts.loc[valid, "preferred"]) <= {"teacher", "student", "tie"}
    assert verdicts.loc[~valid, "preferred"].isna().all()  # neither side named: invalid
    judge = json.loads((data / "08_reporting" / "judge_preference.json").read_text())
    assert judge["n_valid"] + judge["n_invalid"] == n and judge["n_judgments"] == judge["n_valid"]
    assert judge["reliable"] is False  # a handful of products is below any floor


def check_speed_outputs(data: Path) -> None:
    """The speed test on 3 products, 2 rounds: medians, every round, every text gated."""
    table = pd.read_parquet(data / "08_reporting" / "speed_table.parquet")
    assert table["system"].tolist() == ["teacher", "student"]
    assert table["inferences_per_description"].tolist() == [2, 1]
    assert (table["descriptions"] == 3).all()
    assert (table["model_peak_mb"] > 0).all() and (table["cost_per_1000"] > 0).all()
    summary = json.loads((data / "08_reporting" / "speed_summary.json").read_text())
    assert summary["reference"]["throughput_ratio"] == 4.0
    # both as conf/local's catalog serves them; the student's auto as applied on one thread
    student_precision = applied_precision("auto", threads(), "fp32")
    assert summary["serving"] == {
        "teacher": "openvino int8 (f32)", "student": f"openvino fp32 ({student_precision})",
    }  # fmt: skip
    assert 0 <= summary["student_gate_pass_rate"] <= 1 and summary["gate_noise_band"] >= 0
    rounds = pd.read_parquet(data / "08_reporting" / "speed_rounds.parquet")
    assert sorted(rounds["round"]) == [0, 0, 1, 1] and "texts" not in rounds
    outputs = pd.read_parquet(data / "07_model_output" / "speed_outputs.parquet")
    assert len(outputs) == 2 * 2 * 3 and set(outputs["system"]) == {"teacher", "student"}
    student = outputs[outputs["system"] == "student"]
    median = student.groupby("round")["passed"].mean().median()
    assert summary["student_gate_pass_rate"] == pytest.approx(median)
    assert (table["rounds"] == 2).all()
    assert (table["descriptions_per_s_min"] <= table["descriptions_per_s_max"]).all()
    assert len(summary["headline"]) == 4 and all(  # with the threads the cost is priced from
        part in summary["headline"][3] for part in ("Measured on 3 products, 2", "1 CPU thread")
    )
    assert summary["sample"] == {"products": 3, "rounds": 2, "min_products": 64, "enough": False}
    assert summary["throughput_ratio_min"] <= summary["throughput_ratio_max"]


@pytest.mark.slow
def test_evaluation_writes_every_output(
    project_copy, tiny_model_dir, tiny_openvino_dir, tiny_openvino_int8_dir
):
    write_test_sets(project_copy, n=4)
    write_adapter(project_copy, tiny_model_dir)
    write_student_openvino(project_copy, tiny_openvino_dir)
    serve_student_in_float32(project_copy)
    speed_teacher_in_f32(project_copy)
    write_model_exports(
        project_copy, tiny_model_dir, fp32=tiny_openvino_dir, int8=tiny_openvino_int8_dir
    )
    run_pipeline(
        project_copy, tiny_model_dir, "evaluation",
        evaluation=small_evaluation(project_copy, pairs=2),
        teacher_generation=small_teacher(project_copy),
    )  # fmt: skip
    data = project_copy / "data"
    for name in ("student_outputs", "base_student_outputs"):
        out = pd.read_parquet(data / "07_model_output" / f"{name}.parquet")
        assert sorted(out["product_id"]) == ["P0", "P1", "P2", "P3"], name

    scores = pd.read_parquet(data / "08_reporting" / "eval_item_scores.parquet")
    assert sorted(scores["system"].unique()) == ["base_student", "student", "teacher"]
    assert len(scores) == 3 * 4
    metrics = json.loads((data / "08_reporting" / "eval_metrics.json").read_text())
    assert set(metrics["overall"]) == {"teacher", "student", "base_student"}
    assert set(metrics["per_category"]) == {"Kitchen", "Clothing"}

    sheet = pd.read_csv(data / "08_reporting" / "human_eval" / "sheet.csv")
    key = pd.read_csv(data / "07_model_output" / "human_eval_key.csv")
    assert len(sheet) == 3 and set(sheet["item_id"]) == set(key["item_id"])
    page = (data / "08_reporting" / "human_eval" / "rate.html").read_text()
    assert "<html" in page.lower() and "student" not in page.lower()
    human = json.loads((data / "08_reporting" / "human_preference.json").read_text())
    assert human["n_judgments"] == 0 and human["files"] == []  # no rater files yet

    check_judge_outputs(data, n=4)

    check_speed_outputs(data)

    # A rater's file (as the page downloads it) is read on the next run; bad rows are rejected.
    ratings = data / "01_raw" / "human_ratings"
    ratings.mkdir(exist_ok=True)
    rows = [("ann", item, "A") for item in key["item_id"]] + [("ann", "item-unknown", "B")]
    pd.DataFrame(rows, columns=["rater", "item_id", "choice"]).to_csv(
        ratings / "judgments-ann.csv", index=False
    )
    run_pipeline(
        project_copy, tiny_model_dir, "evaluation",
        evaluation=small_evaluation(project_copy), teacher_generation=small_teacher(project_copy),
    )  # fmt: skip
    human = json.loads((data / "08_reporting" / "human_preference.json").read_text())
    assert human["n_judgments"] == 3
    expected_teacher = (key["a_system"] == "teacher").sum() / 3
    assert human["shares"]["teacher"]["share"] == pytest.approx(expected_teacher)
    rejected = pd.read_parquet(data / "08_reporting" / "human_rating_rejections.parquet")
    assert rejected["reason"].tolist() == [UNKNOWN_ITEM]


@pytest.mark.slow
def test_evaluation_without_a_trained_model_says_so(project_copy, tiny_model_dir):
    write_test_sets(project_copy, n=2)
    # before any node: the outputs finetune writes, named with the pipeline to run
    with pytest.raises(
        RuntimeError,
        match=r"student_adapter \(written by finetune\).*Run them first: kedro run --pipeline "
        r"finetune$",
    ):
        run_pipeline(project_copy, tiny_model_dir, "evaluation")


@pytest.mark.slow
def test_evaluation_with_an_empty_test_set_says_so(project_copy, tiny_model_dir, tiny_openvino_dir):
    frame = write_test_sets(project_copy, n=2)
    frame.head(0).drop(columns="attributes").to_parquet(
        project_copy / "data" / "05_model_input" / "distill_test.parquet"
    )
    write_adapter(project_copy, tiny_model_dir)
    write_student_openvino(project_copy, tiny_openvino_dir)
    with pytest.raises(ValueError, match="the test set is empty"):
        run_pipeline(project_copy, tiny_model_dir, "evaluation")
