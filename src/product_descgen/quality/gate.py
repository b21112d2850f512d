"""The quality gate over a set of descriptions, each checked against its own product: the rule
and grounded-claim checks, with the lexicon extended by the catalogue the products come from,
and the off-product check against that catalogue. Used by the teacher's gate and describe."""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd

from product_descgen.quality.checks import GateParams, Problem, check_description
from product_descgen.quality.claims import catalogue_lexicon
from product_descgen.quality.off_product import off_product_problems


class OutputFields(NamedTuple):
    """Where a record keeps its description, the reason generation stopped, and its error."""

    text: str = "text"
    finish_reason: str = "finish_reason"
    error: str = "error"


def gate_problems(
    records: list[dict[str, Any]],
    fields: OutputFields,
    catalogue: pd.DataFrame,
    params: GateParams,
    embedding_model: str | None,
) -> list[list[Problem]]:
    """Every problem of each record's description (``fields.text``), in record order. A record
    without a text failed to generate: ``generation_failed`` with its ``fields.error``.
    ``embedding_model``: the off-product check's embedder (globals ``embedding_model``)."""
    lexicon = catalogue_lexicon(params.claims, catalogue)
    texts = [r.get(fields.text) for r in records]
    elsewhere = off_product_problems(
        texts, [str(r["product_id"]) for r in records], catalogue, params.off_product,
        embedding_model,
    )  # fmt: skip
    problems = []
    for record, text, off in zip(records, texts, elsewhere, strict=True):
        if text is None or pd.isna(text):
            problems.append([("generation_failed", str(record.get(fields.error) or "no output"))])
        else:
            found = check_description(
                text, record["input_text"], params, record.get(fields.finish_reason), lexicon
            )
            problems.append(found + off)
    return problems
