"""Build a backend from a connection config (catalog) and the model registry (parameters)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt

from product_descgen.llm.types import GenerationSettings, Request, Result


class Backend(Protocol):
    name: str
    model_id: str

    def generate(self, requests: Sequence[Request]) -> Iterator[list[Result]]: ...


class Connection(BaseModel):
    """How to reach the model: in-process transformers, or an OpenAI-compatible server."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["transformers", "openai"] = "transformers"
    # transformers
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    quantization: Literal["none", "int8", "nf4"] = "none"  # how the weights are served
    batch_size: PositiveInt = 16
    threads: PositiveInt | None = None
    # openai
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None  # the server's model name
    concurrency: PositiveInt = 8
    timeout_s: PositiveFloat = 120.0
    max_attempts: PositiveInt = 5
    backoff_s: PositiveFloat = 1.0
    backoff_max_s: PositiveFloat = 30.0


def make_backend(
    connection: Connection,
    model_dir: str,
    settings: GenerationSettings,
    adapter: str | None = None,
) -> Backend:
    """A ready backend. ``adapter``: a LoRA adapter directory merged into the local model (a
    server loads its own: name it in ``connection.model``). For ``openai``, base URL and key
    fall back to ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``; the model name falls back to the
    registry's model."""
    if connection.backend == "transformers":
        from product_descgen.llm.hf_backend import TransformersBackend

        return TransformersBackend(
            model_dir,
            settings,
            batch_size=connection.batch_size,
            dtype=connection.dtype,
            threads=connection.threads,
            quantization=connection.quantization,
            adapter=adapter,
        )
    from product_descgen.llm.openai_backend import OpenAIBackend

    base_url = connection.base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise ValueError(
            "the openai backend needs base_url: set it in conf/local/credentials.yml "
            "(see docs/teacher_server.md) or in OPENAI_BASE_URL"
        )
    return OpenAIBackend(
        base_url=base_url,
        model=connection.model or model_dir,
        settings=settings,
        api_key=connection.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
        concurrency=connection.concurrency,
        timeout_s=connection.timeout_s,
        max_attempts=connection.max_attempts,
        backoff_s=connection.backoff_s,
        backoff_max_s=connection.backoff_max_s,
    )
