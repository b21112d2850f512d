"""The model input text: product facts, original description and target audience."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any

from product_descgen.prep.config import AudienceParams

NO_DESCRIPTION = "(none)"
# the original description: the input's last field, which may run over several lines
ORIGINAL_DESCRIPTION = re.compile(r"(?ms)^Original description: ?(.*)")


def category_key(category: str) -> str:
    """A category name as ``audience.per_category`` matches it: case, punctuation and spacing
    aside, "&" read as "and" ("Beauty & Personal Care" is "beauty and personal care")."""
    words = re.sub(r"[^\w]+", " ", category.replace("&", " and ").casefold())
    return " ".join(words.split())


def audience_for(category: str, params: AudienceParams) -> str:
    """The target audience of a category (per-category setting, else the default)."""
    per_category = {category_key(k): v for k, v in params.per_category.items()}
    return per_category.get(category_key(category), params.default)


def unmatched_audiences(categories: Iterable[str], params: AudienceParams) -> dict[str, str | None]:
    """``audience.per_category`` keys that match none of ``categories``, each with the category
    (one without an audience of its own) it most likely misspells, whose products get the
    default audience; ``None``: no category is close (a key for categories this catalogue does
    not hold, as in a table shared by several catalogues)."""
    present = {category_key(c): c for c in categories}
    keyed = {category_key(k) for k in params.per_category}
    without = [k for k in present if k not in keyed]
    unmatched: dict[str, str | None] = {}
    for key in params.per_category:
        if category_key(key) not in present:
            close = _close_category(category_key(key), without)
            unmatched[key] = present[close] if close else None
    return unmatched


def _close_category(key: str, categories: list[str]) -> str | None:
    """The category ``key`` most likely means: spelt nearly alike ("jewelry", "jewellery"), or
    one holding the other's words ("kitchen", "kitchen and dining")."""
    close = difflib.get_close_matches(key, categories, n=1, cutoff=0.8)
    if close:
        return close[0]
    return next((c for c in categories if f" {key} " in f" {c} " or f" {c} " in f" {key} "), None)


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
CUT_ATTRIBUTES = "- …"  # the last line of an attribute list cut to fit


def longest_fitting(candidate: Callable[[int], str], low: int, high: int, fits: Callable) -> int:
    """The largest ``n`` in ``[low, high]`` whose ``candidate(n)`` fits (0: none does). A binary
    search: a tokenizer's count is not a function of length, so the result is checked."""
    if high < low or not fits(candidate(low)):
        return 0
    while low < high:
        middle = (low + high + 1) // 2
        if fits(candidate(middle)):
            low = middle
        else:
            high = middle - 1
    return low if fits(candidate(low)) else 0


def cut_input_to_fit(
    input_text: str, count_tokens: Callable[[str], int], max_tokens: int
) -> str | None:
    """``input_text`` in at most ``max_tokens`` tokens (``count_tokens``: the student's
    tokenizer): unchanged if it fits; else its original description (the last field) cut at a
    word and marked with an ellipsis; else, when the facts alone are over, without the
    description and with the first attributes that fit, the list marked as cut; ``None`` when
    not even one attribute fits (a title or an audience that long)."""

    def fits(text: str) -> bool:
        return count_tokens(text) <= max_tokens

    if fits(input_text):
        return input_text
    found = ORIGINAL_DESCRIPTION.search(input_text)
    if not found:
        return None
    head, description = input_text[: found.start(1)], found.group(1)

    def cut(n: int) -> str:
        kept = description[:n]
        if not description[n].isspace() and " " in kept.strip():
            kept = kept.rsplit(" ", 1)[0]  # no half word
        return head + kept.rstrip(" ,;:-") + CUT_MARK

    if description.strip() and description != NO_DESCRIPTION:
        n = longest_fitting(cut, 1, len(description) - 1, fits)
        text = cut(n)
        if n and text.removeprefix(head).removesuffix(CUT_MARK).strip():
            return text
    lines = head.split("\n")  # ..., "Attributes:", "- key: value"..., "Original description: "
    first = lines.index("Attributes:") + 1 if "Attributes:" in lines else len(lines) - 1
    attributes = lines[first:-1]

    def keep(k: int) -> str:
        shown = [*lines[:first], *attributes[:k], CUT_ATTRIBUTES]
        return "\n".join([*shown, lines[-1] + CUT_MARK.strip()])

    k = longest_fitting(keep, 1, len(attributes) - 1, fits)
    return keep(k) if k else None
