"""Blind pairwise preference: the human evaluation kit, preference statistics, LLM-judge verdicts.

The rater sees a sheet (an HTML page) with two descriptions per product, "A" and "B", and never
learns which system wrote which: that lives in the key only. Ratings come back as CSV files in
A/B terms and are unblinded through the key (:mod:`product_descgen.evaluation.ratings`).
Several raters' judgments of one item are not independent: the intervals widen by the design
effect of that clustering (items as clusters).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import warnings
from functools import lru_cache
from importlib.resources import files as resource_files
from statistics import NormalDist
from typing import Any

import jinja2
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

SYSTEMS = ("teacher", "student")
CHOICES = ("A", "B", "tie")
LABELS = (*SYSTEMS, "tie")
REFERENCE = {"tie_or_student": 0.60}  # the reference case: "a tie or the student in 60% of cases"

SHEET_COLUMNS = ["item_id", "title", "product", "text_a", "text_b"]
KEY_COLUMNS = ["item_id", "product_id", "a_system", "b_system"]
_TEMPLATE = "templates/human_eval.html.j2"


MIN_KAPPA_ITEMS = 2  # items two raters must share for their agreement (kappa)


def text_or_none(value: Any) -> str | None:
    """A stripped string, or None for a missing/blank value."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _item_id(product_id: str, text_a: str, text_b: str) -> str:
    digest = hashlib.sha256("\x1f".join((product_id, text_a, text_b)).encode("utf-8"))
    return "item-" + digest.hexdigest()[:10]


def build_kit(pairs: pd.DataFrame, n_items: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pick ``n_items`` products, blind and shuffle their two descriptions: ``(sheet, key)``."""
    missing = [c for c in ("product_id", "title", "input_text", *SYSTEMS) if c not in pairs]
    if missing:
        raise ValueError(f"pairs lack column(s): {', '.join(missing)}")
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    usable = pairs[
        pairs["teacher"].map(text_or_none).notna() & pairs["student"].map(text_or_none).notna()
    ]
    usable = usable.assign(product_id=usable["product_id"].astype(str))
    if usable["product_id"].duplicated().any():
        logger.warning("pairs repeat some product ids; keeping the first pair of each")
        usable = usable.drop_duplicates("product_id", keep="first")
    if usable.empty:  # e.g. a student that wrote nothing: reported, not a crash
        logger.warning(
            "human evaluation kit is empty: no pair has both a teacher and a student "
            "description (of %d rows)", len(pairs),
        )  # fmt: skip
        return pd.DataFrame(columns=SHEET_COLUMNS), pd.DataFrame(columns=KEY_COLUMNS)
    if len(pairs) > len(usable):
        logger.info("skipped %d pair(s) lacking a description", len(pairs) - len(usable))

    rng = np.random.default_rng(seed)
    n = min(n_items, len(usable))
    picked = usable.iloc[rng.permutation(len(usable))[:n]]  # a random pick in a random order
    # Balanced sides: half the items show the teacher as A, in a random pattern.
    teacher_first = np.arange(n) < (n // 2 + int(n % 2 and rng.integers(2)))  # odd n: a coin
    teacher_first = rng.permutation(teacher_first)

    sheet_rows, key_rows = [], []
    for row, first in zip(picked.itertuples(index=False), teacher_first, strict=True):
        a_system, b_system = SYSTEMS if first else SYSTEMS[::-1]
        text_a, text_b = text_or_none(getattr(row, a_system)), text_or_none(getattr(row, b_system))
        item_id = _item_id(row.product_id, text_a, text_b)
        title, product = text_or_none(row.title) or "", text_or_none(row.input_text) or ""
        sheet_rows.append((item_id, title, product, text_a, text_b))
        key_rows.append((item_id, row.product_id, a_system, b_system))
    logger.info("built a blind kit of %d item(s) from %d usable pair(s)", n, len(usable))
    sheet = pd.DataFrame(sheet_rows, columns=SHEET_COLUMNS)
    return sheet, pd.DataFrame(key_rows, columns=KEY_COLUMNS)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    source = resource_files(__package__).joinpath(_TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(source)


def render_page(sheet: pd.DataFrame, title: str = "Blind evaluation: product descriptions") -> str:
    """A self-contained HTML page for raters, from the sheet only (never the key)."""
    missing = [c for c in SHEET_COLUMNS if c not in sheet]
    if missing:
        raise ValueError(f"sheet lacks column(s): {', '.join(missing)}")
    items = [
        {c: text_or_none(row[c]) or "" for c in SHEET_COLUMNS}
        for row in sheet[SHEET_COLUMNS].to_dict("records")
    ]
    return _template().render(title=title, items=items, choices=CHOICES)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as formulas when a rater opens the CSV in a
    spreadsheet: a cell starting with ``= + - @``, a tab or a carriage return gets a ``'``."""

    def safe(value: Any) -> Any:
        return f"'{value}" if isinstance(value, str) and value[:1] in _FORMULA_START else value

    return frame.apply(
        lambda column: (
            column.map(safe)
            if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
            else column
        )
    )


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _wilson(share: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson interval of ``share`` over ``n`` judgments (an effective, fractional ``n`` too)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(share * n, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def design_effect(values: np.ndarray, items: np.ndarray) -> float:
    """How much clustering by item inflates the variance of ``values``' mean: the
    cluster-robust (sandwich) variance over the independent-judgment one, each with its
    small-sample factor (G/(G-1) items, n/(n-1) judgments), so one judgment per item gives
    exactly 1; never below 1. One item judged by everyone counts as one judgment."""
    n = len(values)
    residuals = values - values.mean()
    independent = n / (n - 1) * float((residuals**2).sum()) if n > 1 else 0.0
    per_item = pd.Series(residuals).groupby(items).sum()
    if independent == 0:  # no spread: nothing to inflate
        return 1.0
    if len(per_item) == 1:
        return float(n)
    robust = len(per_item) / (len(per_item) - 1) * float((per_item**2).sum())
    return max(1.0, robust / independent)


def _kappa(first: list[str], second: list[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        kappa = float(cohen_kappa_score(first, second, labels=list(LABELS)))
    if math.isnan(kappa):  # both raters used one label throughout: chance agreement is 1
        return 1.0 if first == second else None
    return round(kappa, 12)  # no -2.2e-16 for a kappa of 0


def _agreement(judgments: pd.DataFrame) -> dict:
    last = judgments.drop_duplicates(["rater", "item_id"], keep="last")
    by_rater = {
        rater: dict(zip(group["item_id"], group["preferred"], strict=True))
        for rater, group in last.groupby("rater", sort=True)
    }
    pairs = []
    for r1, r2 in itertools.combinations(sorted(by_rater), 2):
        shared = sorted(set(by_rater[r1]) & set(by_rater[r2]))
        kappa = None
        if len(shared) >= MIN_KAPPA_ITEMS:
            kappa = _kappa([by_rater[r1][i] for i in shared], [by_rater[r2][i] for i in shared])
        pairs.append({"raters": [str(r1), str(r2)], "n_items": len(shared), "kappa": kappa})
    kappas = [p["kappa"] for p in pairs if p["kappa"] is not None]
    return {"pairs": pairs, "mean_kappa": float(np.mean(kappas)) if kappas else None}


def preference_summary(judgments: pd.DataFrame, confidence: float = 0.95) -> dict:
    """Preference shares with Wilson intervals, the teacher-student gap with a normal interval
    (both widened by :func:`design_effect` where raters share items), inter-rater kappa."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n = len(judgments)
    summary: dict[str, Any] = {
        "n_judgments": n,
        "n_items": int(judgments["item_id"].nunique()) if n else 0,
        "n_raters": int(judgments["rater"].nunique()) if n else 0,
        "confidence": confidence,
        "shares": None,
        "tie_or_student": None,
        "teacher_minus_student": None,
        "agreement": {"pairs": [], "mean_kappa": None},
        "reference": dict(REFERENCE),
    }
    if not n:
        return summary
    unknown = set(judgments["preferred"]) - set(LABELS)
    if unknown:
        raise ValueError(f"unexpected preferred label(s): {sorted(map(str, unknown))}")
    preferred, items = judgments["preferred"].to_numpy(), judgments["item_id"].to_numpy()

    def share(labels: tuple[str, ...]) -> dict[str, float]:  # Wilson at the effective size
        hits = np.isin(preferred, labels).astype(float)
        low, high = _wilson(hits.mean(), n / design_effect(hits, items), confidence)
        return {"count": int(hits.sum()), "share": float(hits.mean()), "ci_low": low,
                "ci_high": high}  # fmt: skip

    summary["shares"] = {label: share((label,)) for label in LABELS}
    summary["tie_or_student"] = share(("student", "tie"))
    difference = (preferred == "teacher").astype(float) - (preferred == "student").astype(float)
    p_t, p_s = float((preferred == "teacher").mean()), float((preferred == "student").mean())
    gap = p_t - p_s
    variance = (p_t + p_s - gap**2) / n * design_effect(difference, items)
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(variance)
    summary["teacher_minus_student"] = {
        "gap": gap,
        "ci_low": max(-1.0, gap - half),
        "ci_high": min(1.0, gap + half),
    }
    summary["agreement"] = _agreement(judgments)
    return summary


def _verdict_choice(value: Any) -> str | None:
    text = text_or_none(value)
    return text.upper() if text and text.upper() in ("A", "B") else None


def judge_verdicts(ab: pd.DataFrame, ba: pd.DataFrame) -> pd.DataFrame:
    """Combine an LLM judge's answers in both orders (ab: A=teacher; ba: A=student) per product."""
    teacher, student = SYSTEMS
    orders = {"ab": (ab, {"A": teacher, "B": student}), "ba": (ba, {"A": student, "B": teacher})}
    answers: dict[str, dict[str, str | None]] = {}
    for order, (frame, _) in orders.items():
        if frame["product_id"].astype(str).duplicated().any():
            logger.warning("judge answers (%s) repeat product ids; keeping the last", order)
        answers[order] = {
            str(p): _verdict_choice(c)
            for p, c in zip(frame["product_id"], frame["choice"], strict=True)
        }
    products = list(dict.fromkeys([*answers["ab"], *answers["ba"]]))
    rows = []
    for product in products:
        row: dict[str, Any] = {"product_id": product}
        for order, (_, systems) in orders.items():
            choice = answers[order].get(product)
            row[f"{order}_choice"] = choice
            row[f"{order}_preferred"] = systems.get(choice) if choice else None
        # an answer that picks neither side is invalid (not a tie); two valid answers that
        # disagree follow the position, not the text: a tie
        valid = row["ab_preferred"] is not None and row["ba_preferred"] is not None
        consistent = valid and row["ab_preferred"] == row["ba_preferred"]
        row["valid"] = valid
        row["preferred"] = (row["ab_preferred"] if consistent else "tie") if valid else None
        row["position_consistent"] = consistent
        rows.append(row)
    columns = [
        "product_id",
        "ab_choice",
        "ba_choice",
        "ab_preferred",
        "ba_preferred",
        "preferred",
        "valid",
        "position_consistent",
    ]
    result = pd.DataFrame(rows, columns=columns, dtype=object)
    return result.astype({"valid": bool, "position_consistent": bool})


def judge_summary(
    verdicts: pd.DataFrame, confidence: float, min_valid: int, min_consistency: float
) -> dict[str, Any]:
    """The judge's preference over its valid verdicts, with valid and invalid counts, position
    consistency (over the valid ones) and whether it clears the floors to be headlined."""
    valid = verdicts.loc[verdicts["valid"].astype(bool)] if len(verdicts) else verdicts
    summary = preference_summary(
        valid.assign(rater="llm_judge", item_id=valid["product_id"]), confidence
    )
    n_valid = len(valid)
    consistency = float(valid["position_consistent"].mean()) if n_valid else None
    problems = []
    if n_valid < min_valid:
        problems.append(f"{n_valid} valid verdicts < {min_valid}")
    if consistency is None:
        problems.append("position consistency unmeasured (no valid verdict)")
    elif consistency < min_consistency:
        problems.append(f"position consistency {consistency:.0%} < {min_consistency:.0%}")
    return {
        **summary,
        "n_valid": n_valid,
        "n_invalid": len(verdicts) - n_valid,
        "position_consistency": consistency,
        "reliable": not problems,
        "unreliable_because": "; ".join(problems),
    }


def human_reliability(summary: dict[str, Any], min_judgments: int) -> dict[str, Any]:
    """``summary`` with whether it has enough judgments to be headlined."""
    n = summary.get("n_judgments") or 0
    enough = n >= min_judgments
    reason = "" if enough else f"{n} judgments < {min_judgments}"
    return {**summary, "reliable": enough, "unreliable_because": reason}
