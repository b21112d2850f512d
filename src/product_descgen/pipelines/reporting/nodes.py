"""reporting nodes: thin adapters over :mod:`product_descgen.reporting`."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, PositiveInt

from product_descgen.evaluation.stamp import (
    require_one_evaluation,
    require_one_training,
    require_trained_student,
)
from product_descgen.models import model_fingerprint
from product_descgen.prep.split import SPLITS
from product_descgen.reporting import charts, report
from product_descgen.training.contract import read_contract

KEY_QUALITY = ("rouge_l", "chrf", "embedding_cosine", "attribute_coverage",
               "format_compliance", "unsupported_claims_per_item", "distinct_2")  # fmt: skip


class ReportingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = "product_descgen: teacher vs distilled student"
    n_examples: PositiveInt = 6
    seed: int = 0
    data_root: str = "data"  # where this environment's files are (globals), named in the notes


def plot_funnel(
    data_prep_summary: dict[str, Any],
    teacher_inputs: pd.DataFrame,
    teacher_rejections: pd.DataFrame,
    distill_train: pd.DataFrame,
    distill_validation: pd.DataFrame,
    distill_test: pd.DataFrame,
) -> go.Figure:
    """Raw rows to distillation sets, with quarantine and gate rejections by reason."""
    reasons = teacher_rejections["reasons"].str.split(",").explode().str.strip()
    accepted = dict(
        zip(SPLITS, (len(distill_train), len(distill_validation), len(distill_test)), strict=True)
    )
    return charts.funnel(
        data_prep_summary, len(teacher_inputs), accepted,
        reasons[reasons != ""].value_counts().to_dict(), len(teacher_rejections),
    )  # fmt: skip


def check_one_training(
    student_adapter: str, training_history: pd.DataFrame, vice_report: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The training history and vice report, once checked to be of the training that wrote the
    newest adapter (a finetune run stopped part-way leaves the rest from the run before)."""
    require_one_training(read_contract(student_adapter), training_history, vice_report)
    return training_history, vice_report


def plot_training(training_history: pd.DataFrame) -> go.Figure:
    """Loss and vice measures per epoch."""
    return charts.training(training_history)


def plot_quality(evaluation: dict[str, dict[str, Any]]) -> go.Figure:
    """Quality metrics per system, overall and per category (of :func:`check_one_evaluation`'s
    summaries, as every evaluation figure: a mix is never drawn)."""
    return charts.quality(evaluation["eval_metrics"])


def plot_preference(evaluation: dict[str, dict[str, Any]]) -> go.Figure:
    """Preference shares with intervals: human raters and the LLM judge."""
    return charts.preference(evaluation["human_preference"], evaluation["judge_preference"])


def plot_cost_speed(speed_table: pd.DataFrame, evaluation: dict[str, dict[str, Any]]) -> go.Figure:
    """Throughput, memory and cost, teacher pipeline vs student."""
    return charts.cost_speed(speed_table, evaluation["speed_summary"])


def collect_key_metrics(evaluation: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Headline numbers as MLflow metrics (``{name: {"value": v, "step": 0}}``), from
    :func:`check_one_evaluation`'s summaries, with the sample sizes they were measured on (and
    whether those reach their floors: 0 is indicative): a mix of evaluations is never logged."""
    speed_summary, size = evaluation["speed_summary"], evaluation["eval_metrics"].get("size", {})
    values: dict[str, Any] = {
        f"speed.{k}": speed_summary.get(k)
        for k in ("throughput_ratio", "memory_reduction", "cost_reduction", "tokens_per_s_ratio",
                  "teacher_gate_pass_rate", "student_gate_pass_rate", "gate_noise_band")
    }  # fmt: skip
    sample = speed_summary.get("sample", {})
    values |= {
        "speed.products": sample.get("products"), "speed.enough": sample.get("enough"),
        "quality.test_items": size.get("test_items"), "quality.enough": size.get("enough"),
    }  # fmt: skip
    for system, row in evaluation["eval_metrics"]["overall"].items():
        for metric in KEY_QUALITY:
            values[f"quality.{system}.{metric}"] = row.get(metric)
    for source in ("human", "judge"):
        summary = evaluation[f"{source}_preference"]
        values[f"preference.{source}.tie_or_student"] = (summary.get("tie_or_student") or {}).get(
            "share"
        )
    return {k: {"value": float(v), "step": 0} for k, v in values.items() if v is not None}


def write_report_notes(
    evaluation: dict[str, dict[str, Any]], vice_report: dict[str, Any], params: ReportingParams
) -> list[str]:
    """What a reader must know beside the figures: headlines, too few test or speed-test
    products, flagged epochs, and how to add human ratings."""
    eval_metrics, speed_summary = evaluation["eval_metrics"], evaluation["speed_summary"]
    human_preference = evaluation["human_preference"]
    floors = [  # a figure measured on fewer items than its floor is indicative only
        (speed_summary.get("sample", {}), "products", "min_products",
         "Speed, memory and cost measured on {n} products, fewer than the {floor} the comparison "
         "needs (evaluation.speed.min_products): those figures are indicative only (with few "
         "products in flight the throughput ratio has read higher than on 64: "
         "docs/benchmarks.md)."),
        (eval_metrics.get("size", {}), "test_items", "min_test_items",
         "Evaluated on {n} test products, fewer than the {floor} the headline claims need "
         "(evaluation.min_test_items): every quality figure here is indicative only."),
    ]  # fmt: skip
    notes = [
        text.format(n=record[count], floor=record[floor])
        for record, count, floor, text in floors
        if record and not record["enough"]
    ]
    notes += speed_summary.get("headline", [])
    teacher_gate = speed_summary.get("teacher_gate_pass_rate")
    student_gate = speed_summary.get("student_gate_pass_rate")
    if teacher_gate is not None and student_gate is not None:
        band = speed_summary.get("gate_noise_band")
        notes.append(
            "The quality figures compare texts on test products whose teacher text passed the "
            "quality gate, so the teacher's are of its accepted texts only. Of the texts both "
            "systems wrote in the speed test (their own generation, not the distillation set's: "
            f"speed_outputs) the gate passed {teacher_gate:.0%} of the teacher pipeline's and "
            f"{student_gate:.0%} of the student's"
            + (f" (a difference within ±{band:.0%} is noise)." if band is not None else ".")
        )
    flagged = vice_report.get("flagged_epochs", [])
    if flagged:
        notes.append(
            "Vice detector flagged epoch(s) "
            + ", ".join(f"{f['epoch']} ({', '.join(f['flags'])})" for f in flagged)
        )
    if not human_preference.get("n_judgments"):
        root = params.data_root
        notes.append(
            f"No human ratings yet: open {root}/08_reporting/human_eval/rate.html, rate, and put "
            f"the downloaded file in {root}/01_raw/human_ratings/."
        )
    return notes


def collect_report_figures(
    funnel_chart: go.Figure,
    training_chart: go.Figure,
    quality_chart: go.Figure,
    preference_chart: go.Figure,
    cost_speed_chart: go.Figure,
) -> dict[str, go.Figure]:
    """The report's charts under their section titles, in reading order."""
    return {
        "Cost and speed": cost_speed_chart, "Quality": quality_chart,
        "Preference": preference_chart, "Training": training_chart, "Data funnel": funnel_chart,
    }  # fmt: skip


def build_report(
    report_figures: dict[str, go.Figure],
    report_notes: list[str],
    key_numbers: list[dict[str, str]],
    examples: list[dict[str, Any]],
    params: ReportingParams,
) -> str:
    """The self-contained HTML report."""
    return report.render(params.title, report_figures, key_numbers, examples, report_notes)


def pick_report_examples(
    eval_set: pd.DataFrame, student_outputs: pd.DataFrame, params: ReportingParams
) -> list[dict[str, Any]]:
    """A seeded sample of test products with the teacher's and the student's texts."""
    return report.examples(eval_set, student_outputs, params.n_examples, params.seed)


def pick_report_numbers(evaluation: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The report's headline figures, from :func:`check_one_evaluation`'s summaries."""
    e = evaluation
    return report.key_numbers(
        e["eval_metrics"], e["speed_summary"], e["human_preference"], e["judge_preference"]
    )


SUMMARIES = ("eval_metrics", "speed_summary", "human_preference", "judge_preference")


def check_one_evaluation(
    student_outputs: pd.DataFrame,
    student_adapter: str,
    eval_set: pd.DataFrame,
    **summaries: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The evaluation's summaries (``eval_metrics``, ``speed_summary``, ``human_preference``,
    ``judge_preference``, by name), once checked to be of the student texts the report shows,
    the student that wrote them and the teacher references they were scored against (an
    evaluation run stopped part-way leaves a mix of two), that student being the newest
    trained one, whose training the report charts (a finetune run after the evaluation): what
    every evaluation figure, chart and MLflow metric of the report is taken from."""
    if set(summaries) != set(SUMMARIES):
        raise TypeError(
            f"check_one_evaluation takes the summaries {SUMMARIES}, got {sorted(summaries)}"
        )
    require_trained_student(student_outputs, model_fingerprint(student_adapter))
    require_one_evaluation(student_outputs, summaries, eval_set)
    return summaries
