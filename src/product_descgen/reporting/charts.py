"""Plotly figures of a run: data funnel, training, quality, preference, cost and speed.

Each function takes the run's artifacts (tables and metric dicts, as the catalog loads them) and
returns a ``plotly.graph_objects.Figure`` with a title, axis labels with units, and the same
colour for a system everywhere.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLOURS = {"teacher": "#1f77b4", "student": "#ff7f0e", "base_student": "#7f7f7f",
           "tie": "#bcbd22", "reference": "#2ca02c"}  # fmt: skip
LABELS = {"teacher": "Teacher (2 inferences)", "student": "Fine-tuned student",
          "base_student": "Base student", "tie": "Tie"}  # fmt: skip
_LAYOUT = {"template": "plotly_white", "height": 420, "margin": {"t": 70, "l": 60, "r": 30}}


def _figure(title: str, **layout: Any) -> go.Figure:
    return go.Figure(layout={**_LAYOUT, "title": {"text": title}, **layout})


def funnel(
    summary: dict[str, Any],
    teacher_inputs: int,
    accepted_by_split: dict[str, int],
    rejections_by_reason: dict[str, int],
    teacher_rejected: int,
) -> go.Figure:
    """Raw -> quarantined -> split -> sent to the teacher -> rejected (each reason: the texts
    that have it, so a text with several counts under each) -> accepted -> distillation sets."""
    q = summary.get("quarantined_by_reason", {})
    by_stage = summary.get("quarantined_by_stage", {})
    kept = sum(summary.get("splits", {}).values())
    cleaned = summary["raw_rows"] - by_stage.get("ingest", 0) - by_stage.get("clean", 0)
    stages = [
        ("Raw rows", summary["raw_rows"], "raw"),
        *((f"Quarantined: {r}", n, "out") for r, n in sorted(q.items(), key=lambda x: -x[1])),
        ("Cleaned", cleaned, "kept"),
        ("Length-filtered (fits the student)", kept, "kept"),
        ("Sent to the teacher", teacher_inputs, "kept"),
        ("Teacher rejected", teacher_rejected, "out"),
        *((f"  rejected for {r}", n, "out") for r, n in rejections_by_reason.items()),
        ("Teacher accepted", sum(accepted_by_split.values()), "kept"),
        *((f"Distillation {s}", n, "kept") for s, n in accepted_by_split.items()),
    ]
    colour = {"raw": "#444444", "out": "#d62728", "kept": COLOURS["reference"]}
    fig = _figure(
        "Data funnel: from the raw catalogue to the distillation sets",
        xaxis_title="products (a rejected text counts under each of its reasons)",
        height=max(420, 26 * len(stages) + 120),
    )  # fmt: skip
    fig.add_bar(
        y=[s[0] for s in stages], x=[s[1] for s in stages], orientation="h",
        marker_color=[colour[s[2]] for s in stages], text=[s[1] for s in stages],
        textposition="outside",
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    return fig


def training(history: pd.DataFrame) -> go.Figure:
    """Loss per epoch (train, validation) and the vice detector's measures per epoch."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Loss per epoch", "Vice detector on the probe set")
    )
    for column, name, dash in (
        ("train_loss", "train", None), ("validation_loss", "validation", "dash")
    ):  # fmt: skip
        fig.add_scatter(x=history["epoch"], y=history[column], name=f"{name} loss",
                        mode="lines+markers", line={"color": COLOURS["student"], "dash": dash},
                        row=1, col=1)  # fmt: skip
    for column, name in VICE_MEASURES.items():
        if column in history:
            fig.add_scatter(x=history["epoch"], y=history[column], mode="lines+markers",
                            name=name, row=1, col=2)  # fmt: skip
    fig.update_layout(**_LAYOUT, title={"text": "Student training"})
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text="cross-entropy loss (nats/token)", row=1, col=1)
    fig.update_yaxes(title_text="share of probe outputs; length drift", row=1, col=2)
    return fig


VICE_MEASURES = {  # the vice detector's measures (training.vices), each behind one flag
    "opening_share": "same opening (share)", "repeated_phrase_share": "repeated phrase (share)",
    "format_violation_share": "format violations (share)",
    "self_repetition_share": "repeating itself (share)",
    "length_drift": "length drift (mean length / reference's - 1)",
}  # fmt: skip


QUALITY_METRICS = {
    "rouge_l": "ROUGE-L F1 vs teacher", "chrf": "chrF vs teacher (/100)",
    "embedding_cosine": "embedding cosine vs teacher", "attribute_coverage": "attribute coverage",
    "format_compliance": "format compliance",
    "unsupported_item_share": "items with unsupported claims (lower is better)",
    "distinct_2": "distinct-2", "opening_share": "share with a shared opening (lower is better)",
}  # fmt: skip


def _value(metric: str, value: Any) -> float | None:
    if value is None:
        return None
    return float(value) / 100 if metric == "chrf" else float(value)


def quality(eval_metrics: dict[str, Any]) -> go.Figure:
    """Each metric for base student, fine-tuned student and teacher (overall; per category in
    the dropdown)."""
    fig = _figure(
        "Quality against the teacher's reference", yaxis_title="score (0-1)",
        yaxis_range=[0, 1.05], barmode="group",
    )  # fmt: skip
    views = {"all categories": eval_metrics["overall"], **eval_metrics.get("per_category", {})}
    systems = [s for s in ("base_student", "student", "teacher") if s in views["all categories"]]
    for view, by_system in views.items():
        for system in systems:
            row = by_system.get(system, {})
            fig.add_bar(
                x=list(QUALITY_METRICS.values()),
                y=[_value(m, row.get(m)) for m in QUALITY_METRICS],
                name=LABELS[system], marker_color=COLOURS[system],
                visible=view == "all categories", legendgroup=system,
            )  # fmt: skip
    n = len(systems)
    buttons = [
        {"label": view, "method": "update",
         "args": [{"visible": [i // n == k for i in range(n * len(views))]},
                  {"title": {"text": f"Quality against the teacher's reference: {view}"}}]}
        for k, view in enumerate(views)
    ]  # fmt: skip
    fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1.0, "y": 1.18, "xanchor": "right"}])
    return fig


def _source_label(name: str, summary: dict[str, Any]) -> str:
    invalid = f", {summary['n_invalid']} invalid" if summary.get("n_invalid") else ""
    label = f"{name} (n={summary.get('n_judgments', 0)}{invalid})"
    if summary.get("reliable") is False and summary.get("unreliable_because"):
        label += f"<br>unreliable: {summary['unreliable_because']}"
    return label


def preference(human: dict[str, Any], judge: dict[str, Any], reference: float = 0.60) -> go.Figure:
    """Teacher / tie / student shares with 95% intervals, per source, and their sum tie or
    student (what the reference case's figure is) beside the reference; a source the
    evaluation does not headline is drawn faint and says why."""
    fig = _figure(
        "Pairwise preference: teacher vs fine-tuned student", yaxis_title="share of judgments",
        yaxis_range=[0, 1.05], barmode="group",
    )  # fmt: skip
    sources = {
        _source_label("Human raters", human): human,
        _source_label("LLM judge, both orders", judge): judge,
    }
    opacity = [0.35 if s.get("reliable") is False else 1.0 for s in sources.values()]
    for label in ("teacher", "tie", "student", "tie_or_student"):
        xs, ys, lo, hi = [], [], [], []
        for source, summary in sources.items():
            found = summary.get(label) if label == "tie_or_student" else None
            share = found or (summary.get("shares") or {}).get(label) or {}
            value = share.get("share")
            xs.append(source)
            ys.append(value)
            lo.append(None if value is None else value - share["ci_low"])
            hi.append(None if value is None else share["ci_high"] - value)
        error = {"type": "data", "array": hi, "arrayminus": lo}
        if label == "tie_or_student":  # the reference's measure: a marker, not a fourth bar
            fig.add_scatter(x=xs, y=ys, name="tie or student", mode="markers", error_y=error,
                            marker={"symbol": "diamond", "size": 12, "opacity": opacity,
                                    "color": COLOURS["reference"]})  # fmt: skip
        else:
            fig.add_bar(x=xs, y=ys, name=LABELS.get(label, label), error_y=error,
                        marker={"color": COLOURS[label], "opacity": opacity})  # fmt: skip
    fig.add_hline(y=reference, line_dash="dot", line_color=COLOURS["reference"],
                  annotation_text=f"reference case: tie or student {reference:.0%}")  # fmt: skip
    return fig


def _bar_text(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"  # noqa: PLR2004 - digits shown


def cost_speed(table: pd.DataFrame, summary: dict[str, Any]) -> go.Figure:
    """Throughput, peak memory and cost per 1,000 descriptions, teacher pipeline vs student."""
    panels = [
        ("descriptions_per_s", "descriptions / s", f"{summary['throughput_ratio']:.1f}x (ref. 4x)"),
        ("model_peak_mb", "model peak memory (MiB)",
         f"{summary['memory_reduction']:.0%} less (ref. 75%)"),
        ("cost_per_1000", f"cost per 1,000 ({table['currency'].iloc[0]})",
         f"{summary['cost_reduction']:.0%} lower (ref. >80%)"),
    ]  # fmt: skip
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{p[1]}: {p[2]}" for p in panels])
    for col, (column, unit, _) in enumerate(panels, start=1):
        for row in table.to_dict(orient="records"):
            fig.add_bar(
                x=[LABELS[row["system"]]], y=[row[column]], name=LABELS[row["system"]],
                marker_color=COLOURS[row["system"]], showlegend=col == 1,
                text=[_bar_text(row[column])], textposition="outside", row=1, col=col,
            )  # fmt: skip
        fig.update_yaxes(title_text=unit, row=1, col=col)
    serving = summary.get("serving", {})
    title = (f"Cost and speed, measured side by side (teacher served {serving.get('teacher')}, "
             f"student {serving.get('student')})")  # fmt: skip
    fig.update_layout(**_LAYOUT, title={"text": title})
    return fig
