"""The quality gate over a set of descriptions, each checked against its own product: the rule
and grounded-claim checks, with the lexicon extended by the catalogue the products come from,
and the off-product check against that catalogue. Used by the teacher's gate and describe."""

from __future__ import annotations

from typing import Any

import pandas as pd

from product_descgen.quality.checks import GateParams, Problem, check_description
from product_descgen.quality.claims import catalogue_lexicon
from product_descgen.quality.off_product import off_product_problems


def gate_problems(
    records: list[dict[str, Any]],
    text_field: str,
    finish_field: str,
    error_field: str,
    catalogue: pd.DataFrame,
    params: GateParams,
) -> list[list[Problem]]:
    """Every problem of each record's description (``text_field``), in record order. A record
    without a text failed to generate: ``generation_failed`` with its ``error_field``."""
    lexicon = catalogue_lexicon(params.claims, catalogue)
    texts = [r.get(text_field) for r in records]
    elsewhere = off_product_problems(
        texts, [str(r["product_id"]) for r in records], catalogue, params.off_product
    )
    problems = []
    for record, text, off in zip(records, texts, elsewhere, strict=True):
        if text is None or pd.isna(text):
            problems.append([("generation_failed", str(record.get(error_field) or "no output"))])
        else:
            found = check_description(
                text, record["input_text"], params, record.get(finish_field), lexicon
            )
            problems.append(found + off)
    return problems
