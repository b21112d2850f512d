"""Blind human evaluation kit, preference statistics and LLM-judge verdicts."""

from __future__ import annotations

import io
import json
import math
import re

import pandas as pd
import pytest

from product_descgen.evaluation.preference import (
    build_kit,
    human_reliability,
    judge_summary,
    judge_verdicts,
    preference_summary,
    render_page,
    spreadsheet_safe,
)
from product_descgen.evaluation.ratings import read_ratings

Z95 = 1.959963984540054


def make_pairs(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": [f"P{i:03d}" for i in range(n)],
            "title": [f"Desk lamp model {i}" for i in range(n)],
            "input_text": [f"colour: red\nheight: {30 + i} cm" for i in range(n)],
            "teacher": [
                f"A bright desk lamp, model {i}, with a long description." for i in range(n)
            ],
            "student": [f"Desk lamp {i}, short text." for i in range(n)],
        }
    )


def as_read_by_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def test_kit_structure_sides_and_stable_ids():
    pairs = make_pairs()
    pairs.loc[len(pairs)] = ["P999", "No student text", "x", "some text", None]
    sheet, key = build_kit(pairs, n_items=12, seed=7)
    assert list(sheet.columns) == ["item_id", "title", "product", "text_a", "text_b"]
    assert list(key.columns) == ["item_id", "product_id", "a_system", "b_system"]
    assert len(sheet) == 12 and "P999" not in set(key["product_id"])
    assert sheet["item_id"].str.fullmatch(r"item-[0-9a-f]{10}").all()
    assert sheet["item_id"].is_unique and list(key["item_id"]) == list(sheet["item_id"])
    assert (key["a_system"] != key["b_system"]).all()
    assert (key["a_system"] == "teacher").sum() == 6  # balanced, so sides really vary
    assert list(key["product_id"]) != sorted(key["product_id"])  # item order shuffled
    merged = sheet.merge(key, on="item_id").merge(pairs, on="product_id")
    for row in merged.itertuples():
        assert row.text_a == getattr(row, row.a_system)
        assert row.text_b == getattr(row, row.b_system)
    again, again_key = build_kit(pairs, n_items=12, seed=7)
    pd.testing.assert_frame_equal(again, sheet)
    small, small_key = build_kit(pairs, n_items=5, seed=3)
    assert len(small) == 5 and small_key["product_id"].is_unique
    assert set(small_key["product_id"]) <= set(pairs["product_id"][:12])
    empty, empty_key = build_kit(pairs.assign(student=None), n_items=3, seed=0)
    assert empty.empty and empty_key.empty  # nothing to rate: an empty kit, not a crash
    assert "<html" in render_page(empty).lower()


def test_round_trip_unblinds_raters_truth():
    pairs = make_pairs()
    sheet, key = build_kit(pairs, n_items=12, seed=11)
    index = {pid: int(pid[1:]) for pid in key["product_id"]}
    truth = {
        "ana": lambda i: "student" if i % 2 == 0 else "teacher",
        "ben": lambda i: "tie" if i % 3 == 0 else "student",
        "cy": lambda i: "teacher",
    }
    files = {}
    for rater, prefers in truth.items():
        rows = []
        for k in key.itertuples():  # the rater sees only sides A and B
            wanted = prefers(index[k.product_id])
            choice = "tie" if wanted == "tie" else ("A" if k.a_system == wanted else "B")
            rows.append({"rater": rater, "item_id": k.item_id, "choice": choice})
        files[f"judgments-{rater}.csv"] = as_read_by_pandas(pd.DataFrame(rows))
    judgments, rejections = read_ratings(files, key)
    assert rejections.empty and len(judgments) == 36
    for j in judgments.itertuples():
        assert j.preferred == truth[j.rater](index[j.product_id])
    summary = preference_summary(judgments)
    json.dumps(summary)  # plain types only
    assert (summary["n_judgments"], summary["n_items"], summary["n_raters"]) == (36, 12, 3)
    # teacher: ana 6 + cy 12; student: ana 6 + ben 8; tie: ben 4 (ids 0, 3, 6, 9)
    assert summary["shares"]["teacher"]["share"] == pytest.approx(18 / 36)
    assert summary["shares"]["student"]["share"] == pytest.approx(14 / 36)
    assert summary["shares"]["tie"]["share"] == pytest.approx(4 / 36)
    assert summary["tie_or_student"]["share"] == pytest.approx(18 / 36)
    assert summary["reference"] == {"tie_or_student": 0.60}
    kappas = {tuple(p["raters"]): p["kappa"] for p in summary["agreement"]["pairs"]}
    assert kappas[("ana", "cy")] == pytest.approx(0.0)  # po = .5 = pe


def test_page_is_blind_escaped_and_self_contained():
    pairs = make_pairs()
    pairs.loc[0, "title"] = "<script>alert(1)</script>"
    pairs.loc[1, "input_text"] = "size: 5 & 6\n</pre><b>bold</b>"
    sheet, key = build_kit(pairs, n_items=12, seed=5)
    html = render_page(sheet.merge(key, on="item_id"), title="Round <1>")  # extra columns ignored
    lowered = html.lower()
    assert "teacher" not in lowered and "student" not in lowered
    assert "a_system" not in html and "b_system" not in html
    assert not any(pid in html for pid in key["product_id"])
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "5 &amp; 6" in html and "&lt;/pre&gt;&lt;b&gt;" in html
    assert "<title>Round &lt;1&gt;</title>" in html
    assert "http://" not in lowered and "https://" not in lowered
    assert not re.search(r"<[^>]*\b(?:src|href)\s*=", html)
    assert html.count("<script>") == 1 and "<link" not in lowered
    for item_id in sheet["item_id"]:
        for value in ("A", "B", "tie"):
            pattern = rf'<input[^>]*name="choice-{item_id}"[^>]*value="{value}"'
            assert len(re.findall(pattern, html)) == 1
    for marker in ('id="rater"', 'id="download"', 'id="progress"', "rater,item_id,choice"):
        assert marker in html
    assert '"judgments-"' in html and "new Blob(" in html
    assert html.index(sheet["text_a"][0]) < html.index(sheet["text_b"][0])


def summary_of(preferred: list[str], raters: list[str] | None = None, **kw) -> dict:
    n = len(preferred)
    frame = pd.DataFrame(
        {
            "rater": raters or ["r"] * n,
            "item_id": [f"item-{i}" for i in range(n)],
            "preferred": preferred,
        }
    )
    return preference_summary(frame, **kw)


def test_wilson_intervals_and_gap_by_formula():
    summary = summary_of(["teacher"] * 4 + ["student"] * 5 + ["tie"])
    low, high = wilson(6, 10)
    assert summary["tie_or_student"]["share"] == pytest.approx(0.6)
    assert summary["tie_or_student"]["ci_low"] == pytest.approx(low)
    assert summary["tie_or_student"]["ci_high"] == pytest.approx(high)
    assert (summary["shares"]["tie"]["ci_low"], summary["shares"]["tie"]["ci_high"]) == (
        pytest.approx(wilson(1, 10)[0]),
        pytest.approx(wilson(1, 10)[1]),
    )
    half = Z95 * math.sqrt((0.4 + 0.5 - 0.1**2) / 10)
    gap = summary["teacher_minus_student"]
    assert gap["gap"] == pytest.approx(-0.1)
    assert (gap["ci_low"], gap["ci_high"]) == (
        pytest.approx(-0.1 - half),
        pytest.approx(-0.1 + half),
    )
    narrower = summary_of(["teacher"] * 4 + ["student"] * 5 + ["tie"], confidence=0.9)
    assert narrower["tie_or_student"]["ci_low"] == pytest.approx(wilson(6, 10, z=1.6448536)[0])


def test_raters_who_agree_on_every_item_count_about_once():
    # three raters, identical judgments on 20 items: about as informative as one rater
    per_item = ["teacher"] * 8 + ["student"] * 9 + ["tie"] * 3
    frame = pd.DataFrame(
        {
            "rater": [r for _ in per_item for r in ("ana", "ben", "cai")],
            "item_id": [f"item-{i}" for i, _ in enumerate(per_item) for _ in range(3)],
            "preferred": [p for p in per_item for _ in range(3)],
        }
    )
    tripled, once = preference_summary(frame), summary_of(per_item)
    naive = summary_of(frame["preferred"].tolist())  # 60 judgments taken as independent

    def width(summary: dict) -> float:
        return summary["tie_or_student"]["ci_high"] - summary["tie_or_student"]["ci_low"]

    assert tripled["tie_or_student"]["count"] == 36
    assert tripled["tie_or_student"]["share"] == pytest.approx(0.6)
    assert width(tripled) == pytest.approx(width(once), rel=0.05)
    assert width(tripled) > 1.6 * width(naive)
    gap = {k: tripled["teacher_minus_student"][k] - once["teacher_minus_student"][k]
           for k in ("ci_low", "ci_high")}  # fmt: skip
    assert abs(gap["ci_low"]) < 0.02 and abs(gap["ci_high"]) < 0.02


def test_raters_who_split_evenly_on_every_item_are_not_penalised():
    # on each item one rater says teacher, the other student: no item effect to widen for
    frame = pd.DataFrame(
        {
            "rater": ["ana", "ben"] * 10,
            "item_id": [f"item-{i // 2}" for i in range(20)],
            "preferred": ["teacher", "student"] * 10,
        }
    )
    summary = preference_summary(frame)
    low, high = wilson(10, 20)
    assert summary["shares"]["teacher"]["ci_low"] == pytest.approx(low)
    assert summary["shares"]["teacher"]["ci_high"] == pytest.approx(high)


def test_empty_summary():
    empty = pd.DataFrame(columns=["rater", "item_id", "product_id", "choice", "preferred", "file"])
    summary = preference_summary(empty)
    json.dumps(summary)
    assert summary["n_judgments"] == 0 and summary["shares"] is None
    assert summary["agreement"] == {"pairs": [], "mean_kappa": None}


def test_cohen_kappa_by_hand():
    # r1: t t s tie ; r2: t s s tie -> po = 3/4; pe = .5*.25 + .25*.5 + .25*.25 = .3125
    r1 = ["teacher", "teacher", "student", "tie"]
    r2 = ["teacher", "student", "student", "tie"]
    frame = pd.DataFrame(
        {
            "rater": ["r1"] * 4 + ["r2"] * 4 + ["r3"],
            "item_id": [f"i{k}" for k in range(4)] * 2 + ["i0"],
            "preferred": r1 + r2 + ["teacher"],
        }
    )
    agreement = preference_summary(frame)["agreement"]
    pairs = {tuple(p["raters"]): p for p in agreement["pairs"]}
    assert pairs[("r1", "r2")]["n_items"] == 4
    assert pairs[("r1", "r2")]["kappa"] == pytest.approx((0.75 - 0.3125) / (1 - 0.3125))
    assert pairs[("r1", "r3")] == {"raters": ["r1", "r3"], "n_items": 1, "kappa": None}
    assert agreement["mean_kappa"] == pytest.approx(7 / 11)
    disjoint = summary_of(["tie"] * 4, raters=["x", "x", "y", "y"])  # no item in common
    assert disjoint["agreement"]["pairs"] == [{"raters": ["x", "y"], "n_items": 0, "kappa": None}]
    constant = pd.DataFrame(
        {"rater": ["x", "x", "y", "y"], "item_id": ["i0", "i1"] * 2, "preferred": ["tie"] * 4}
    )
    assert preference_summary(constant)["agreement"]["mean_kappa"] == 1.0


def test_judge_verdicts_both_orders():
    products = ["p1", "p2", "p3", "p4", "p5", "p6"]
    ab = pd.DataFrame({"product_id": products, "choice": ["A", "A", "B", None, "?", "B"]})
    ba = pd.DataFrame({"product_id": products[:5], "choice": ["B", "A", "a", "A", "B"]})
    verdicts = judge_verdicts(ab, ba).set_index("product_id")
    expected_columns = (
        "ab_choice ba_choice ab_preferred ba_preferred preferred valid position_consistent"
    )
    assert list(verdicts.columns) == expected_columns.split()
    # an answer naming neither side (None, "?", or no answer) makes the verdict invalid, not a tie
    assert verdicts["preferred"].tolist() == ["teacher", "tie", "student", None, None, None]
    assert verdicts["valid"].tolist() == [True, True, True, False, False, False]
    assert verdicts["position_consistent"].tolist() == [True, False, True, False, False, False]
    assert verdicts.loc["p2", "ab_preferred"] == "teacher"
    assert verdicts.loc["p2", "ba_preferred"] == "student"  # position bias: "A" both times
    assert verdicts.loc["p4", "ab_choice"] is None and verdicts.loc["p6", "ba_preferred"] is None


def test_a_judge_that_never_picks_a_side_is_unreliable_with_no_share():
    products = [f"p{i}" for i in range(30)]
    ab = pd.DataFrame({"product_id": products, "choice": ["?"] * 30})
    summary = judge_summary(judge_verdicts(ab, ab), 0.95, min_valid=20, min_consistency=0.6)
    assert summary["n_valid"] == 0 and summary["n_invalid"] == 30
    assert summary["reliable"] is False and "0 valid verdicts < 20" in summary["unreliable_because"]
    assert summary["tie_or_student"] is None  # nothing to headline


def test_a_consistent_judge_with_enough_verdicts_is_reliable():
    products = [f"p{i}" for i in range(25)]
    ab = pd.DataFrame({"product_id": products, "choice": ["B"] * 20 + ["?"] * 5})
    ba = pd.DataFrame({"product_id": products, "choice": ["A"] * 25})
    summary = judge_summary(judge_verdicts(ab, ba), 0.95, min_valid=20, min_consistency=0.6)
    assert summary["reliable"] and summary["n_valid"] == 20 and summary["n_invalid"] == 5
    assert summary["position_consistency"] == 1.0
    assert summary["tie_or_student"]["share"] == 1.0  # the student, both orders, 20 of 20


def test_human_ratings_below_the_minimum_are_not_headlined():
    assert human_reliability({"n_judgments": 12}, 30)["reliable"] is False
    assert human_reliability({"n_judgments": 30}, 30)["reliable"] is True


def test_the_sheet_cannot_carry_formulas():
    sheet = pd.DataFrame({"item_id": ["i1"], "text_a": ['=HYPERLINK("x")'], "text_b": ["ok"]})
    safe = spreadsheet_safe(sheet)
    assert safe.loc[0, "text_a"] == '\'=HYPERLINK("x")' and safe.loc[0, "text_b"] == "ok"
