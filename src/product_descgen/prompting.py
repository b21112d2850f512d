"""Prompt sets: editable YAML files with Jinja templates, one per step.

Steps: ``draft`` and ``refine`` (the teacher), ``describe`` (one-inference baseline) and
``judge`` (pairwise comparison); a file holds the steps its use needs.
Two forms: ``chat`` (system + user messages, for chat models) and ``base`` (one completion
prompt with worked examples, for base models such as the default Gemma 3 270M teacher).
Product text is data: it is placed between delimiters, and any delimiter inside it is
neutralised so it cannot close the data block and pose as instructions.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from product_descgen.llm.types import GenerationSettings, Request

# keep_trailing_newline: a base-model prompt must end with "\n" after its last heading, or
# the model sees an unfinished heading line (Gemma 3 270M then ends at once with <eos>).
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


STEPS = ("draft", "refine", "describe", "judge")
UNTRUSTED = ("product", "draft", "description_a", "description_b")


class ChatTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = ""
    user: str


class FewShotExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: str
    draft: str = ""
    description: str


class PromptSet(BaseModel):
    """One prompt file. ``data_markers`` are the delimiter strings product text may not contain."""

    model_config = ConfigDict(extra="forbid")

    style: Literal["chat", "base"]
    draft: ChatTemplate | str | None = None
    refine: ChatTemplate | str | None = None
    describe: ChatTemplate | str | None = None
    judge: ChatTemplate | str | None = None
    examples: list[FewShotExample] = Field(default_factory=list)
    stop: list[str] = Field(default_factory=list)
    data_markers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _forms_match_style(self) -> PromptSet:
        for step in STEPS:
            template = getattr(self, step)
            if template is None:
                continue
            if (self.style == "chat") != isinstance(template, ChatTemplate):
                want = "{system, user}" if self.style == "chat" else "one template string"
                raise ValueError(f"{step}: a {self.style} prompt set needs {want}")
            for text in (
                [template] if isinstance(template, str) else [template.system, template.user]
            ):
                try:
                    _ENV.parse(text)
                except jinja2.TemplateSyntaxError as err:
                    raise ValueError(f"{step}: template error line {err.lineno}: {err}") from None
        return self

    def require(self, *steps: str) -> PromptSet:
        """This prompt set, or a clear error naming the steps it lacks."""
        missing = [s for s in steps if getattr(self, s) is None]
        if missing:
            raise ValueError(f"the prompt file has no {', '.join(missing)} template")
        return self

    def with_stop(self, settings: GenerationSettings) -> GenerationSettings:
        """``settings`` with this prompt file's stop strings after its own."""
        return settings.with_stop(self.stop)

    def template_text(self, step: str) -> str:
        """Everything that shapes ``step``'s prompt (for cache keys)."""
        template = getattr(self.require(step), step)
        body = template if isinstance(template, str) else f"{template.system}\n{template.user}"
        shots = "\n".join(e.model_dump_json() for e in self.examples)
        return f"{self.style}\n{body}\n{shots}\n{self.stop}\n{self.data_markers}"


MIN_MARKER_CHARS = 2  # a one-character marker cannot be broken up


def neutralise(text: str, markers: list[str]) -> str:
    """Break up delimiters inside untrusted text: ``</product_data>`` -> ``</ product_data>``."""
    for marker in markers:
        if len(marker) < MIN_MARKER_CHARS:
            continue
        lead = len(marker) - len(marker.lstrip("<>/#[]{}|-=*`"))
        cut = min(max(lead, 1), len(marker) - 1)
        broken = marker[:cut] + " " + marker[cut:]
        text = re.sub(re.escape(marker), lambda _m, b=broken: b, text, flags=re.IGNORECASE)
    return text


def render(
    prompts: PromptSet, step: str, key: str, variables: dict[str, Any], meta: dict[str, Any]
) -> Request:
    """Build the request for ``step``. Untrusted variables (product text, drafts, the
    descriptions a judge compares) are neutralised here."""
    prompts.require(step)
    safe = {
        name: neutralise(value, prompts.data_markers) if name in UNTRUSTED else value
        for name, value in variables.items()
    }
    safe["examples"] = prompts.examples
    template = getattr(prompts, step)
    if isinstance(template, str):
        return Request(key=key, prompt=_ENV.from_string(template).render(**safe), meta=meta)
    messages = []
    if template.system.strip():
        messages.append(
            {"role": "system", "content": _ENV.from_string(template.system).render(**safe)}
        )
    messages.append({"role": "user", "content": _ENV.from_string(template.user).render(**safe)})
    return Request(key=key, messages=tuple(messages), meta=meta)
