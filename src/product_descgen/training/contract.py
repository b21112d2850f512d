"""The trained student's serving contract: how it must be prompted and where its text ends.

Saved with the adapter (``serving.json``) by the finetune pipeline; evaluation, describe and
the speed test read it from the artifact, so an adapter is never served with a prompt it was
not trained on, whatever today's parameters say.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from product_descgen.llm.types import GenerationSettings

CONTRACT_FILE = "serving.json"


def stop_strings(template: str) -> list[str]:
    """Where the student's text ends: the markers that open the template's heading lines
    (``### Product`` / ``### Description`` -> ``###``): a new heading means the description is
    over. A template without such markers gives none."""
    markers = []
    for line in template.splitlines():
        if "{" in line:
            continue
        match = re.match(r"^\s*([^\w\s{]+)", line)
        if match and match.group(1) not in markers:
            markers.append(match.group(1))
    return markers


def serving_contract(prompt_template: str, base_model: str) -> dict[str, Any]:
    return {
        "prompt_template": prompt_template,
        "stop": stop_strings(prompt_template),
        "base_model": base_model,
    }


def read_contract(adapter_dir: str | Path) -> dict[str, Any] | None:
    path = Path(adapter_dir) / CONTRACT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def served_prompt(
    adapter_dir: str | Path, template: str, settings: GenerationSettings
) -> tuple[str, GenerationSettings]:
    """The template and settings to serve the adapter with: its contract's template (today's
    ``finetune.prompt_template`` must be the same) and its stop strings added to ``settings``.
    An adapter without a contract (trained before contracts) is served with today's template."""
    contract = read_contract(adapter_dir)
    if contract is None:
        return template, settings
    if contract["prompt_template"] != template:
        raise ValueError(
            f"the student in {adapter_dir} was trained with the prompt template "
            f"{contract['prompt_template']!r}, but finetune.prompt_template is now {template!r}: "
            "restore the template, or retrain (kedro run --pipeline finetune)"
        )
    return contract["prompt_template"], settings.with_stop(contract["stop"])
