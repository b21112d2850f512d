"""The model input text: product facts, original description and target audience."""

from __future__ import annotations

from typing import Any

from product_descgen.prep.config import AudienceParams


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
        f"Original description: {product['description'] or '(none)'}",
    ]
    return "\n".join(lines)
