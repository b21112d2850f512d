"""Datasets that hand nodes an LLM connection and the call store (loaded, never saved)."""

from __future__ import annotations

from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from product_descgen.callstore import CallStore
from product_descgen.llm.backends import Connection


class LLMConnectionDataset(AbstractDataset[None, Connection]):
    """How to reach an LLM, with secrets from ``conf/local/credentials.yml``.

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
        metadata: dict[str, Any] | None = None,
    ) -> None:
        # Validated here, so a bad setting fails when the catalog is built, before any node.
        self._connection = Connection.model_validate({**(connection or {}), **(credentials or {})})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:  # no secrets in logs
        return self._connection.model_dump(exclude={"api_key"})

    def load(self) -> Connection:
        return self._connection

    def save(self, data: None) -> None:
        raise DatasetError("LLMConnectionDataset is read-only")


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
