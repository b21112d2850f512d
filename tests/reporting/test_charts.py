"""Charts read well: titles, axis labels with units, one colour per system everywhere."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from product_descgen.reporting import charts, report

METRICS = {
    "overall": {
        "teacher": {"rouge_l": None, "chrf": None, "format_compliance": 0.8},
        "student": {"rouge_l": 0.4, "chrf": 50.0, "format_compliance": 0.6},
        "base_student": {"rouge_l": 0.1, "chrf": 20.0, "format_compliance": 0.2},
    },
    "per_category": {"Kitchen": {"student": {"rouge_l": 0.5}, "teacher": {}, "base_student": {}}},
}
SPEED = pd.DataFrame(
    [
        {"system": "teacher", "descriptions_per_s": 0.2, "model_peak_mb": 2000.0,
         "cost_per_1000": 0.14, "currency": "USD"},
        {"system": "student", "descriptions_per_s": 1.0, "model_peak_mb": 400.0,
         "cost_per_1000": 0.028, "currency": "USD"},
    ]
)  # fmt: skip
SUMMARY = {"throughput_ratio": 5.0, "memory_reduction": 0.8, "cost_reduction": 0.8,
           "serving": {"teacher": "int8", "student": "int8"}}  # fmt: skip


def colours(fig) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for trace in fig.data:
        out.setdefault(trace.name, set()).add(trace.marker.color)
    return out


def test_quality_chart_has_one_colour_per_system_and_scaled_chrf():
    fig = charts.quality(METRICS)
    assert "Quality" in fig.layout.title.text and fig.layout.yaxis.title.text
    assert colours(fig)[charts.LABELS["student"]] == {charts.COLOURS["student"]}
    student = next(t for t in fig.data if t.name == charts.LABELS["student"] and t.visible)
    values = dict(zip(student.x, student.y, strict=True))
    assert values[charts.QUALITY_METRICS["chrf"]] == pytest.approx(0.5)  # chrF /100
    assert len(fig.layout.updatemenus[0].buttons) == 2  # overall + one category


def test_cost_speed_chart_states_ratios_and_units():
    fig = charts.cost_speed(SPEED, SUMMARY)
    titles = [a.text for a in fig.layout.annotations]
    assert any("5.0x" in t and "4x" in t for t in titles)
    assert any("80% less" in t for t in titles) and any("USD" in t for t in titles)
    assert colours(fig)[charts.LABELS["teacher"]] == {charts.COLOURS["teacher"]}


def test_preference_chart_draws_intervals_and_the_reference_line():
    share = {"share": 0.5, "ci_low": 0.3, "ci_high": 0.7}
    judge = {"n_judgments": 10, "shares": {"teacher": share, "student": share, "tie": share}}
    judge["tie_or_student"] = {"share": 0.8, "ci_low": 0.6, "ci_high": 0.9}
    fig = charts.preference({"n_judgments": 0, "shares": None}, judge)
    assert [t.name for t in fig.data] == [
        "Teacher (2 inferences)", "Tie", "Fine-tuned student", "tie or student",
    ]  # fmt: skip
    assert fig.data[0].error_y.array[1] == pytest.approx(0.2)
    assert fig.data[3].y[1] == 0.8  # what the reference line is compared with, plotted
    assert any("60%" in (a.text or "") for a in fig.layout.annotations)


def test_a_preference_the_evaluation_does_not_headline_is_drawn_faint_and_says_why():
    share = {"share": 0.5, "ci_low": 0.2, "ci_high": 0.8}
    human = {"n_judgments": 8, "shares": {"teacher": share, "student": share, "tie": share},
             "reliable": False, "unreliable_because": "8 judgments < 30"}  # fmt: skip
    judge = human | {"n_judgments": 40, "reliable": True, "unreliable_because": ""}
    fig = charts.preference(human, judge)
    assert "unreliable: 8 judgments < 30" in fig.data[0].x[0]
    assert "unreliable" not in fig.data[0].x[1]
    assert list(fig.data[0].marker.opacity) == [0.35, 1.0]


def test_funnel_counts_every_stage():
    summary = {"raw_rows": 10, "quarantined_by_reason": {"missing_title": 1, "too_many_tokens": 1},
               "quarantined_by_stage": {"ingest": 1, "length_filter": 1},
               "splits": {"train": 6, "validation": 1, "test": 1}}  # fmt: skip
    fig = charts.funnel(
        summary, 8, {"train": 4, "validation": 1, "test": 1}, {"truncated": 2, "markup": 1}, 2
    )
    stages = dict(zip(fig.data[0].y, fig.data[0].x, strict=True))
    assert stages["Raw rows"] == 10 and stages["Quarantined: missing_title"] == 1
    assert stages["Cleaned"] == 9 and stages["Length-filtered (fits the student)"] == 8
    assert stages["Teacher rejected"] == 2 and stages["Teacher accepted"] == 6
    assert stages["  rejected for truncated"] == 2 and stages["  rejected for markup"] == 1


def test_report_escapes_product_text_and_is_self_contained():
    eval_set = pd.DataFrame(
        {"product_id": ["p1"], "title": ["<script>alert(1)</script>"], "category": ["K"],
         "input_text": ["facts & <b>more</b>"], "reference": ["Teacher text."]}
    )  # fmt: skip
    outputs = pd.DataFrame({"product_id": ["p1"], "text": ["Student <i>text</i>."]})
    html = report.render(
        "Run", {"Cost": charts.cost_speed(SPEED, SUMMARY)},
        [{"label": "Throughput", "value": "5.0x", "reference": "4x"}],
        report.examples(eval_set, outputs, 3, 0), ["a note"],
    )  # fmt: skip
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert "Student &lt;i&gt;text&lt;/i&gt;." in html
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # plotly.js is inlined
    assert "Plotly.newPlot" in html
