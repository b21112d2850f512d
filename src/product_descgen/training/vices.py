"""The vice detector: what the reference case saw by eye in early epochs, measured.

Given the descriptions a model wrote for a fixed probe set, it measures
* ``opening_share``: the share of outputs that open with the most common first words,
* ``repeated_phrase_share``: the share of outputs containing the most common phrase
  (an n-gram shared across outputs that is not in their inputs),
* ``length_drift``: mean output length over the reference texts' mean, less one (0 = same),
* ``format_violation_share``: the share failing the format checks (markup, price, first person,
  prompt echo),
* ``self_repetition_share``: the share that repeat themselves inside one text (a sentence said
  twice, an n-gram looping),
and flags every measure past its threshold. With fewer than ``min_outputs`` probe texts the
shares say little: the result carries ``too_few_outputs`` and nothing is flagged on a share.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from product_descgen.quality.checks import (
    GateParams,
    check_echo,
    check_first_person,
    check_markup,
    check_price,
    check_repetition,
    words,
)


class ViceThresholds(BaseModel):
    """Past these, an epoch is flagged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opening_words: int = Field(3, ge=1)
    max_opening_share: float = Field(0.3, ge=0, le=1)
    phrase_words: int = Field(4, ge=2)
    max_repeated_phrase_share: float = Field(0.3, ge=0, le=1)
    max_length_drift: float = Field(0.5, ge=0)  # |mean length / reference length - 1|
    max_format_violation_share: float = Field(0.1, ge=0, le=1)
    max_self_repetition_share: float = Field(0.1, ge=0, le=1)
    min_outputs: int = Field(8, ge=1)  # fewer probe texts: too few to judge shares


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def detect_vices(
    outputs: list[str],
    inputs: list[str],
    references: list[str],
    thresholds: ViceThresholds,
) -> dict[str, object]:
    """Vice measures of one set of outputs, with the flags that are past their thresholds."""
    if not outputs:
        raise ValueError("the vice detector needs at least one output")
    t = thresholds
    tokenised = [[w.casefold() for w in words(o)] for o in outputs]
    openings = Counter(" ".join(tok[: t.opening_words]) for tok in tokenised if tok)
    opening, opening_count = openings.most_common(1)[0] if openings else ("", 0)

    input_grams = [_ngrams([w.casefold() for w in words(i)], t.phrase_words) for i in inputs]
    phrases: Counter[tuple[str, ...]] = Counter()
    for tok, source in zip(tokenised, input_grams, strict=True):
        phrases.update(_ngrams(tok, t.phrase_words) - source)
    phrase, phrase_count = phrases.most_common(1)[0] if phrases else ((), 0)

    out_len = sum(len(tok) for tok in tokenised) / len(outputs)
    ref_len = sum(len(words(r)) for r in references) / max(len(references), 1)
    drift = out_len / ref_len - 1 if ref_len else 0.0

    gate = GateParams()
    violations = sum(
        bool(check_markup(o) or check_price(o) or check_first_person(o) or check_echo(o, gate))
        for o in outputs
    )
    repeating = sum(bool(check_repetition(o, gate)) for o in outputs)
    few = len(outputs) < t.min_outputs
    measures = {
        "outputs": len(outputs),
        "too_few_outputs": few,
        "opening_share": opening_count / len(outputs),
        "top_opening": opening,
        "repeated_phrase_share": phrase_count / len(outputs),
        "top_phrase": " ".join(phrase),
        "mean_words": out_len,
        "length_drift": drift,
        "format_violation_share": violations / len(outputs),
        "self_repetition_share": repeating / len(outputs),
    }
    flags = [
        name
        for name, bad in {
            "same_opening": measures["opening_share"] > t.max_opening_share and opening_count > 1,
            "repeated_phrase": measures["repeated_phrase_share"] > t.max_repeated_phrase_share
            and phrase_count > 1,
            "length_drift": abs(drift) > t.max_length_drift,
            "format_violations": measures["format_violation_share"] > t.max_format_violation_share,
            "self_repetition": measures["self_repetition_share"] > t.max_self_repetition_share,
        }.items()
        if bad and (name == "length_drift" or not few)
    ]
    return {**measures, "flags": flags, "flagged": bool(flags)}
