"""The model input text: product facts, original description and target audience."""

from __future__ import annotations

import re
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
