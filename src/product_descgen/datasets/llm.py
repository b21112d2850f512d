"""Datasets that hand nodes a model, an LLM connection and the call store (loaded, never saved).

Model resolution happens here, once, in the catalog: a model spec from ``globals.yml`` becomes a
local directory (a GGUF package converted once, an OpenVINO export made once), so nodes receive
ready paths and Kedro-Viz shows which model each node uses."""

from __future__ import annotations

from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from product_descgen.callstore import CallStore
from product_descgen.llm.backends import Connection
from product_descgen.models import (
    ModelSpec,
    model_fingerprint,
    resolve_model_dir,
    served_model_dir,
)


class LLMConnectionDataset(AbstractDataset[None, Connection]):
    """How to reach an LLM, with secrets from ``conf/local/credentials.yml``.

    ``model``: the model spec an in-process backend loads; loading resolves it for the backend
    (converted to a model directory, exported for OpenVINO with the connection's weights) into
    ``Connection.model_dir``. A server (``openai``) serves its own model: no spec needed.

    Example (``catalog_llm.yml``)::

        teacher_llm:
          type: product_descgen.datasets.LLMConnectionDataset
          connection: {backend: openai, model: meta-llama/Llama-2-13b-chat-hf}
          credentials: teacher_llm     # base_url and api_key live in credentials.yml
    """

    def __init__(
        self,
        connection: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
        cache_dir: str = "data/06_models",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        # Validated here, so a bad setting fails when the catalog is built, before any node.
        self._connection = Connection.model_validate({**(connection or {}), **(credentials or {})})
        self._model = ModelSpec.model_validate(model) if model is not None else None
        self._cache_dir = cache_dir
        self.metadata = metadata

    @property
    def model(self) -> ModelSpec | None:
        """The model spec loading resolves (None: a server's own model)."""
        return self._model

    @property
    def connection(self) -> Connection:
        """The connection as configured, before loading resolves its model."""
        return self._connection

    def _describe(self) -> dict[str, Any]:  # no secrets in logs
        model = self._model.model_dump(exclude_none=True, mode="json") if self._model else None
        return {**self._connection.model_dump(exclude={"api_key"}), "model": model}

    def load(self) -> Connection:
        if self._connection.backend == "openai":
            return self._connection
        if self._connection.model_dir:
            version = model_fingerprint(self._connection.model_dir)
            return self._connection.model_copy(update={"model_version": version})
        if self._model is None:
            raise DatasetError(
                f"the {self._connection.backend} backend runs a local model: give the dataset a "
                "model spec (model: ${globals:models.teacher}, say)"
            )
        model_dir = served_model_dir(self._model, self._cache_dir, self._connection)
        return self._connection.model_copy(
            update={"model_dir": model_dir, "model_version": model_fingerprint(model_dir)}
        )

    def save(self, data: None) -> None:
        raise DatasetError("LLMConnectionDataset is read-only")

    def _exists(self) -> bool:
        return True  # configuration: it loads whenever asked


class CallStoreDataset(AbstractDataset[None, CallStore]):
    """The append-only SQLite call log/cache; nodes append to it as they generate.
    ``claim_ttl_s``: how long a run's claim on a prompt outlives its last sign of life (a killed
    run's prompts are taken over by another run after this)."""

    def __init__(
        self, filepath: str, claim_ttl_s: float = 300.0, metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = filepath
        self._claim_ttl_s = claim_ttl_s
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def load(self) -> CallStore:
        return CallStore(self._filepath, self._claim_ttl_s)

    def save(self, data: None) -> None:
        raise DatasetError("CallStoreDataset is appended to by nodes through load(); not saved")

    def _exists(self) -> bool:
        return True  # created empty by its first load


class ModelDirDataset(AbstractDataset[None, str]):
    """A model spec resolved to a local Hugging Face model directory (a GGUF package is
    converted once into ``cache_dir``): what training and tokenizers load."""

    def __init__(
        self,
        model: dict[str, Any],
        cache_dir: str = "data/06_models",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model = ModelSpec.model_validate(model)
        self._cache_dir = cache_dir
        self.metadata = metadata

    @property
    def model(self) -> ModelSpec:
        """The model spec loading resolves."""
        return self._model

    def _describe(self) -> dict[str, Any]:
        return {"model": self._model.model_dump(exclude_none=True, mode="json")}

    def load(self) -> str:
        return resolve_model_dir(self._model, self._cache_dir)

    def save(self, data: None) -> None:
        raise DatasetError("ModelDirDataset is read-only")

    def _exists(self) -> bool:
        return True  # a model spec: loading resolves it (or says why it cannot)
