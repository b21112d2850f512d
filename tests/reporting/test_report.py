"""The report's headline figures: a preference is headlined only when it can be trusted."""

from __future__ import annotations

import pandas as pd

from product_descgen.evaluation.preference import judge_summary, judge_verdicts
from product_descgen.reporting.report import key_numbers

SPEED = {"throughput_ratio": 4.2, "memory_reduction": 0.5, "cost_reduction": 0.85}
METRICS = {"overall": {"student": {"format_compliance": 0.9, "rouge_l": 0.3}}}
GATE = "Quality gate pass rate, student / teacher pipeline (speed-test products)"
NO_HUMANS = {"n_judgments": 0, "reliable": False, "unreliable_because": "0 judgments < 30"}


def judge_row(judge: dict) -> str:
    rows = {r["label"]: r["value"] for r in key_numbers(METRICS, SPEED, NO_HUMANS, judge)}
    return rows["Tie or student preferred (LLM judge, both orders)"]


def test_a_judge_that_never_picks_a_side_is_shown_unreliable_without_a_share():
    answers = pd.DataFrame({"product_id": [f"p{i}" for i in range(40)], "choice": ["?"] * 40})
    summary = judge_summary(judge_verdicts(answers, answers), 0.95, 20, 0.6)
    value = judge_row(summary)
    assert value.startswith("unreliable (0 valid verdicts < 20")
    assert "position consistency unmeasured" in value
    assert "; 40 of 40 verdicts invalid, neither A nor B)" in value
    assert "no headline" in value and "CI" not in value


def test_a_reliable_judge_is_headlined_with_its_validity():
    ab = pd.DataFrame({"product_id": [f"p{i}" for i in range(25)], "choice": ["B"] * 25})
    ba = ab.assign(choice="A")
    value = judge_row(judge_summary(judge_verdicts(ab, ba), 0.95, 20, 0.6))
    assert value.startswith("100% (95% CI") and "0 invalid, position consistency 100%" in value


def test_no_human_ratings_yet_is_said_plainly():
    rows = {r["label"]: r["value"] for r in key_numbers(METRICS, SPEED, NO_HUMANS, {})}
    assert rows["Tie or student preferred (human raters)"] == "no judgments yet"


def test_speed_figures_from_too_few_products_are_marked_indicative():
    few = SPEED | {"sample": {"products": 8, "rounds": 3, "min_products": 64, "enough": False}}
    rows = {r["label"]: r["value"] for r in key_numbers(METRICS, few, NO_HUMANS, {})}
    assert rows["Throughput, student / teacher pipeline"] == "4.2x (indicative: 8 products)"
    assert rows["Model memory, student vs teacher"] == "50% less (indicative: 8 products)"
    assert rows["Cost per description"] == "85% lower (indicative: 8 products)"
    assert rows[GATE] == "n/a / n/a (indicative: 8 products)"
    enough = SPEED | {"sample": {"products": 64, "rounds": 3, "min_products": 64, "enough": True}}
    rows = {r["label"]: r["value"] for r in key_numbers(METRICS, enough, NO_HUMANS, {})}
    assert rows["Throughput, student / teacher pipeline"] == "4.2x"
    gated = enough | {"teacher_gate_pass_rate": 0.25, "student_gate_pass_rate": 0.625}
    rows = {r["label"]: r["value"] for r in key_numbers(METRICS, gated, NO_HUMANS, {})}
    assert rows[GATE] == "62% / 25%"
    gated |= {"gate_noise_band": 0.165}  # two standard errors of the difference, 64 products
    rows = {r["label"]: r["value"] for r in key_numbers(METRICS, gated, NO_HUMANS, {})}
    assert rows[GATE] == "62% / 25% (a difference within ±16% is noise)"


def test_a_disabled_judge_rejected_ratings_and_the_test_size_are_said():
    rows = key_numbers(
        METRICS | {"size": {"test_items": 3, "min_test_items": 30, "enough": False}}, SPEED,
        NO_HUMANS | {"n_judgments": 8, "unreliable_because": "8 judgments < 30",
                     "n_rejected_rows": 6},
        {"enabled": False, "reliable": False, "n_judgments": 0},
    )  # fmt: skip
    values = {r["label"]: r["value"] for r in rows}
    assert values["Tie or student preferred (LLM judge, both orders)"] == (
        "not run (evaluation.judge.enabled: false)"
    )
    assert values["Tie or student preferred (human raters)"] == (
        "unreliable (8 judgments < 30): no headline; 6 rows rejected (human_rating_rejections)"
    )
    assert values["Student format compliance"] == "90% (n=3; indicative)"
    assert values["Student ROUGE-L vs teacher"] == "0.300 (n=3; indicative)"
