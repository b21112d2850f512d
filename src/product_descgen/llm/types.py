"""Requests, results, generation settings and prompt tokenisation shared by every backend."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt


class GenerationSettings(BaseModel):
    """Decoding settings. ``temperature: 0`` is greedy; above it, seeded sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: PositiveInt = 256
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0
    repetition_penalty: float = Field(1.0, ge=1.0, le=2.0)
    no_repeat_ngram_size: int = Field(0, ge=0)
    stop: list[str] = Field(default_factory=list)  # cut generation at any of these strings

    def cache_key(self) -> dict[str, Any]:
        """The settings as they decide the text, for call-store keys: greedy decoding reads
        neither ``seed`` nor ``top_p``, so they are keyed at their defaults there."""
        if self.temperature > 0:
            return self.model_dump()
        fields = type(self).model_fields
        return self.model_dump() | {k: fields[k].default for k in ("seed", "top_p")}

    def with_stop(self, stop: list[str]) -> GenerationSettings:
        """A copy that also stops at ``stop`` (a prompt file's or a serving contract's strings),
        after its own; a string it already has is not added twice."""
        added = [s for s in stop if s not in self.stop]
        return self.model_copy(update={"stop": [*self.stop, *added]})


class RetryPolicy(BaseModel):
    """How long one call to a server may take (all of it: connect, wait, stream) and how a
    failed call is retried: at most ``max_attempts`` tries, random exponential backoff capped
    at ``backoff_max_s`` (a server's Retry-After is honoured up to that cap). With several
    servers, each try goes to the least busy server that is up; a server with
    ``server_max_failures`` failed tries in a row rests ``server_rest_s`` seconds. A
    connection's settings (:class:`~product_descgen.llm.backends.Connection` extends it)."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: PositiveFloat = 120.0
    max_attempts: PositiveInt = 5
    backoff_s: PositiveFloat = 1.0
    backoff_max_s: PositiveFloat = 30.0
    server_max_failures: PositiveInt = 3  # failed tries in a row that send a server to rest
    server_rest_s: PositiveFloat = 30.0  # then it is tried again


@dataclass(frozen=True)
class Request:
    """One generation: a chat (``messages``) or a plain completion (``prompt``)."""

    key: str
    messages: tuple[dict[str, str], ...] | None = None
    prompt: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a Request needs exactly one of messages or prompt")


@dataclass
class Result:
    """What one logical call produced (after retries), ready for the call log."""

    key: str
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    finish_reason: str | None = None  # "stop", "length", ...
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


SERVER_NOTE = re.compile(r" \[server [^\]]*\]$")  # error_text's note: where, and a likely cause


def error_text(message: str, server: str = "", limit: int = 300) -> str:
    """A failed call's error as recorded: ``message`` (its kind and text) within ``limit``
    characters, and the server that answered (with a likely cause) kept whole after it (a long
    body no longer cuts it off): :func:`error_cause` drops it again."""
    note = f" [server {server}]" if server else ""
    return message[: max(limit - len(note), 40)] + note


def error_cause(error: str | None) -> str | None:
    """A recorded error without its server note: one cause met on several servers is one."""
    return SERVER_NOTE.sub("", error) if error else error


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Text up to the first stop string, and whether one was found."""
    positions = [text.find(s) for s in stop if s and s in text]
    if not positions:
        return text, False
    return text[: min(positions)], True


def prompt_token_ids(tokenizer: Any, request: Request) -> list[int]:
    """The token ids a local model sees for ``request``. A chat request goes through the
    tokenizer's chat template, which already holds the special tokens; a plain prompt gets the
    tokenizer's special tokens (Gemma degenerates without its BOS)."""
    if request.prompt is not None:
        return tokenizer(request.prompt)["input_ids"]
    if not tokenizer.chat_template:
        raise ValueError(
            f"model {tokenizer.name_or_path} has no chat template: use the base-model prompt "
            "file (teacher_prompts: conf/base/prompts/teacher_base.yml)"
        )
    text = tokenizer.apply_chat_template(
        list(request.messages or ()), tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]
