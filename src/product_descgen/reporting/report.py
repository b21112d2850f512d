"""One self-contained HTML report: key numbers, every figure, and example products with the
teacher's and the student's texts side by side (all text escaped by Jinja's autoescape)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def _template() -> jinja2.Template:
    text = resources.files(__package__).joinpath("templates/report.html.j2").read_text("utf-8")
    return _ENV.from_string(text)


def key_numbers(
    eval_metrics: dict[str, Any],
    speed_summary: dict[str, Any],
    human: dict[str, Any],
    judge: dict[str, Any],
) -> list[dict[str, str]]:
    """The headline figures, each with the reference case's figure beside it."""

    def share(summary: dict[str, Any]) -> str:
        tie = summary.get("tie_or_student") or {}
        rejected = summary.get("n_rejected_rows")
        rejected = f"; {rejected} rows rejected (human_rating_rejections)" if rejected else ""
        if summary.get("enabled") is False:
            return "not run (evaluation.judge.enabled: false)"
        if not summary.get("n_judgments") and not summary.get("n_invalid"):
            return f"no judgments yet{rejected}"
        if summary.get("reliable") is False:
            because = summary.get("unreliable_because")
            return f"unreliable ({because}{_invalid(summary)}): no headline{rejected}"
        validity = (
            f", {summary['n_invalid']} invalid, position consistency "
            f"{summary['position_consistency']:.0%}"
            if "n_invalid" in summary
            else ""
        )
        return (f"{tie['share']:.0%} (95% CI {tie['ci_low']:.0%}-{tie['ci_high']:.0%}, "
                f"n={summary.get('n_judgments')}{validity}){rejected}")  # fmt: skip

    sample = speed_summary.get("sample", {})
    few = f" (indicative: {sample['products']} products)" if sample and not sample["enough"] else ""
    size = eval_metrics.get("size")
    few_tested = "" if not size or size.get("enough", True) else "; indicative"
    tested = f" (n={size['test_items']}{few_tested})" if size else ""
    student = eval_metrics["overall"].get("student", {})
    rows = [
        ("Throughput, student / teacher pipeline",
         f"{speed_summary['throughput_ratio']:.1f}x{few}", "4x"),
        ("Model memory, student vs teacher",
         f"{speed_summary['memory_reduction']:.0%} less{few}", "75% less"),
        ("Cost per description", f"{speed_summary['cost_reduction']:.0%} lower{few}",
         "over 80% lower"),
        ("Quality gate pass rate, student / teacher pipeline (speed-test products)",
         f"{_pct(speed_summary.get('student_gate_pass_rate'))} / "
         f"{_pct(speed_summary.get('teacher_gate_pass_rate'))}{_band(speed_summary)}{few}", ""),
        ("Tie or student preferred (human raters)", share(human), "60%"),
        ("Tie or student preferred (LLM judge, both orders)", share(judge), "60%"),
        ("Student format compliance", _pct(student.get("format_compliance")) + tested, ""),
        ("Student ROUGE-L vs teacher", _num(student.get("rouge_l")) + tested, ""),
    ]  # fmt: skip
    return [{"label": a, "value": b, "reference": c} for a, b, c in rows]


def _band(speed_summary: dict[str, Any]) -> str:
    """The noise band of the gate pass rates' difference, where the summary has one."""
    band = speed_summary.get("gate_noise_band")
    return f" (a difference within ±{band:.0%} is noise)" if band is not None else ""


def _invalid(summary: dict[str, Any]) -> str:
    """How many of a judge's verdicts were invalid (an answer neither A nor B), if any."""
    invalid = summary.get("n_invalid") or 0
    if not invalid:
        return ""
    total = invalid + (summary.get("n_valid") or 0)
    return f"; {invalid} of {total} verdicts invalid, neither A nor B"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def examples(
    eval_set: pd.DataFrame, student_outputs: pd.DataFrame, n: int, seed: int
) -> list[dict[str, Any]]:
    """A seeded sample of test products: facts, teacher text and student text."""
    merged = eval_set.merge(student_outputs[["product_id", "text"]], on="product_id", how="left")
    picked = merged.sample(n=min(n, len(merged)), random_state=seed) if len(merged) else merged
    return [
        {
            "title": row["title"], "category": row["category"], "product": row["input_text"],
            "teacher": row["reference"],
            "student": row["text"] if isinstance(row["text"], str) else "(no output)",
        }
        for row in picked.to_dict(orient="records")
    ]  # fmt: skip


def render(
    title: str,
    figures: dict[str, go.Figure],
    numbers: list[dict[str, str]],
    example_rows: list[dict[str, Any]],
    notes: list[str],
) -> str:
    """The report page; plotly.js is inlined once, so the file opens offline."""
    blocks = [
        {"title": name, "html": pio.to_html(fig, full_html=False, include_plotlyjs=False,
                                            div_id=f"fig-{i}")}
        for i, (name, fig) in enumerate(figures.items())
    ]  # fmt: skip
    return _template().render(
        title=title, plotly_js=get_plotlyjs(), figures=blocks, numbers=numbers,
        examples=example_rows, notes=notes,
    )  # fmt: skip
