"""The model input text: product facts, original description and target audience."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from product_descgen.prep.config import AudienceParams

NO_DESCRIPTION = "(none)"
# the original description: the input's last field, which may run over several lines
ORIGINAL_DESCRIPTION = re.compile(r"(?ms)^Original description: ?(.*)")


def audience_for(category: str, params: AudienceParams) -> str:
    """The target audience of a category (per-category setting, else the default)."""
    return params.per_category.get(category, params.default)


def build_input_text(product: dict[str, Any], audience: str) -> str:
    """Facts in a fixed, labelled layout that both teacher and student prompts embed as data."""
    lines = [
        f"Product: {product['title']}",
        f"Category: {product['category']}",
        f"Audience: {audience}",
        "Attributes:",
        *(f"- {key}: {value}" for key, value in product["attributes"].items()),
        f"Original description: {product['description'] or NO_DESCRIPTION}",
    ]
    return "\n".join(lines)


def original_description(input_text: str) -> str:
    """The original description a model input carries (empty when the product had none)."""
    found = ORIGINAL_DESCRIPTION.search(input_text)
    text = found.group(1).strip() if found else ""
    return "" if text == NO_DESCRIPTION else text


CUT_MARK = " …"  # ends an original description cut to fit


def cut_description_to_fit(
    input_text: str, count_tokens: Callable[[str], int], max_tokens: int
) -> str | None:
    """``input_text`` (unchanged if it fits) with its original description (the last field) cut
    at a word and marked with an ellipsis, as long as fits in ``max_tokens`` tokens
    (``count_tokens``: the student's tokenizer); ``None`` when even its first word does not fit
    (the facts alone are too long).
    Binary search over the kept characters: a tokenizer's count is not a function of length,
    so the result is checked, not assumed."""
    if count_tokens(input_text) <= max_tokens:
        return input_text
    found = ORIGINAL_DESCRIPTION.search(input_text)
    if not found:
        return None
    head, description = input_text[: found.start(1)], found.group(1)
    if not description.strip():
        return None

    def cut(n: int) -> str:
        kept = description[:n]
        if not description[n].isspace() and " " in kept.strip():
            kept = kept.rsplit(" ", 1)[0]  # no half word
        return head + kept.rstrip(" ,;:-") + CUT_MARK

    low, high = 0, len(description) - 1  # characters kept by the longest cut that fits
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(cut(middle)) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    text = cut(low)
    if not low or not text.removeprefix(head).removesuffix(CUT_MARK).strip():
        return None
    return text if count_tokens(text) <= max_tokens else None
