"""Build a backend from a connection: how a model is served (catalog) and, for in-process
engines, the local model directory the catalog's dataset resolved."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import PurePath
from typing import Literal, Protocol

from pydantic import ConfigDict, PositiveFloat, PositiveInt, field_validator, model_validator

from product_descgen.llm.types import GenerationSettings, Request, Result, RetryPolicy

STEP_TIMEOUT_S = 600.0  # an OpenVINO engine step taking longer is a stall (the default guard)


class Backend(Protocol):
    name: str
    model_id: str

    def generate(self, requests: Sequence[Request]) -> Iterator[list[Result]]: ...


def servers(base_url: str | list[str] | None) -> str | list[str] | None:
    """One base URL, or several: a list, or one string with commas (from an environment
    variable)."""
    if isinstance(base_url, str) and "," in base_url:
        return [part.strip() for part in base_url.split(",") if part.strip()]
    return base_url


class Connection(RetryPolicy):
    """How a model is served: in-process on OpenVINO GenAI (the CPU default) or transformers
    (the reference path; GPUs), or through an OpenAI-compatible server (vLLM, llama.cpp, ...),
    with its timeout and retries (:class:`RetryPolicy`)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openvino", "transformers", "openai"] = "openvino"
    batch_size: PositiveInt = 16  # requests in flight
    # openvino: the exported weights and the compute precision
    weights: Literal["fp32", "int8", "int4"] = "int8"
    # auto: the CPU plugin's choice (bf16 compute and a u8 KV cache where the CPU has bf16);
    # f32: float32 compute and KV cache, the transformers float32 reference's greedy text
    precision: Literal["f32", "auto"] = "auto"
    prefix_caching: bool = True
    step_timeout_s: PositiveFloat | None = STEP_TIMEOUT_S  # a longer engine step ends the process
    # transformers
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    quantization: Literal["none", "int8", "nf4"] = "none"  # bitsandbytes weights on a GPU
    # openai: one server, a router, or several servers of the same model (a list, or one string
    # with commas): calls spread over them, ``concurrency`` in flight per server
    base_url: str | list[str] | None = None
    api_key: str | None = None
    model: str | None = None  # the server's model name
    concurrency: PositiveInt = 8
    # in-process backends: the model directory to load (LLMConnectionDataset resolves it from the
    # model spec and the backend: an OpenVINO export for openvino)
    model_dir: str | None = None
    model_version: str | None = None  # what model_dir held when resolved (a fingerprint)

    @field_validator("base_url")
    @classmethod
    def _servers(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("base_url: an empty list of servers")
        return servers(value)

    @model_validator(mode="after")
    def _server_model_named(self) -> Connection:
        if self.backend == "openai" and not self.model:
            raise ValueError(
                "the openai backend needs model: the name its server serves the model under "
                "(vLLM: --served-model-name or the path it loaded; llama.cpp: any name), set in "
                "the dataset's connection (connection: {backend: openai, model: teacher})"
            )
        return self

    @property
    def model_id(self) -> str:
        """What generates the text, for cache keys and reports: the server's model name, or the
        local model (by its files' hash: a checkpoint replaced at the same path answers anew,
        the same files moved keep their answers) and how it is served (engines and weight
        formats give different texts)."""
        if self.backend == "openai" and self.model:
            return self.model
        if self.model_version:  # the files' hash: where they lie does not change the answers
            return f"{PurePath(str(self.model_dir)).name}|{self.serving}|{self.model_version}"
        return f"{self.model_dir}|{self.serving}"

    @property
    def serving(self) -> str:
        """A short name of how the weights are served, for reports and cache keys; OpenVINO's
        precision as applied (``auto`` computes in f32 where the plugin would crash)."""
        if self.backend == "openvino":
            from product_descgen.llm.openvino_compat import applied_precision
            from product_descgen.runtime import threads

            precision = applied_precision(self.precision, threads(), self.weights)
            return f"openvino {self.weights} ({precision})"
        if self.backend == "transformers":
            return f"transformers {self.quantization} {self.dtype}"
        return f"server {self.model}"


def make_backend(
    connection: Connection,
    model_dir: str | None,
    settings: GenerationSettings,
    adapter: str | None = None,
) -> Backend:
    """A ready backend. ``adapter``: a LoRA adapter directory merged into the local model (a
    server loads its own: name it in ``connection.model``). For ``openai``, base URL and key
    fall back to ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``. For ``openvino``, ``model_dir`` is
    an exported OpenVINO directory with any adapter already merged
    (product_descgen.export.openvino)."""
    if connection.backend != "openai" and not model_dir:
        raise ValueError(
            f"the {connection.backend} backend loads a local model and none was given: give its "
            "catalog dataset a model spec (model: ${globals:models.student}, say)"
        )
    if connection.backend == "openvino":
        if adapter:
            raise ValueError(
                "the openvino backend serves an exported model with its adapter merged in: "
                "pass the exported directory (student_openvino), not an adapter"
            )
        from product_descgen.llm.openvino_backend import OpenVINOBackend

        return OpenVINOBackend(model_dir, settings, connection)
    if connection.backend == "transformers":
        from product_descgen.llm.hf_backend import TransformersBackend

        return TransformersBackend(model_dir, settings, connection, adapter=adapter)
    from product_descgen.llm.openai_backend import OpenAIBackend

    base_url = servers(connection.base_url or os.environ.get("OPENAI_BASE_URL"))
    if not base_url:
        raise ValueError(
            "the openai backend needs base_url: set it in conf/local/credentials.yml "
            "(see docs/teacher_server.md) or in OPENAI_BASE_URL"
        )
    return OpenAIBackend(
        base_url=base_url,
        model=str(connection.model),
        settings=settings,
        api_key=connection.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
        concurrency=connection.concurrency,
        retry=RetryPolicy(**connection.model_dump(include=set(RetryPolicy.model_fields))),
    )
