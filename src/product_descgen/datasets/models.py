"""Datasets for trained models: Ludwig's model directory (versioned) and a peft adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, VersionNotFoundError

from product_descgen.export.student import SKIPPED_FILE


def _is_dir(path: str) -> bool:
    return Path(path).is_dir()


class _VersionedDirectory(AbstractVersionedDataset[Any, Any]):
    """A (versioned) directory written by a library's own ``save``; subclasses load/save it."""

    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=PurePosixPath(filepath), version=version, exists_function=_is_dir)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

    def _get_load_path(self) -> PurePosixPath:
        try:
            return super()._get_load_path()
        except VersionNotFoundError:
            raise DatasetError(
                f"no trained model at {self._filepath}: run `kedro run --pipeline finetune` "
                "first (with the same --env)"
            ) from None

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_dir()
        except DatasetError:
            return False


class LudwigModelDataset(_VersionedDirectory):
    """Saves a ``LudwigModel`` with ``model.save(dir)``; loads it with ``LudwigModel.load``.

    With ``versioned: true`` every save is kept under ``<filepath>/<timestamp>/``.
    """

    def load(self) -> Any:
        from ludwig.api import LudwigModel

        from product_descgen.training import ludwig_compat

        ludwig_compat.apply()
        path = Path(self._get_load_path())
        if not (path / "model_hyperparameters.json").is_file():
            raise DatasetError(f"no trained Ludwig model at {path}: run the finetune pipeline")
        return LudwigModel.load(str(path), backend="local")  # a Ray-trained model: no Ray here

    def save(self, data: Any) -> None:
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        data.save(str(path))


class PeftAdapterDataset(_VersionedDirectory):
    """The LoRA adapter alone, in peft format (``adapter_config.json`` + safetensors).

    Saves the peft model inside a ``LudwigModel`` (or a ``PeftModel``); loads the adapter's
    directory path, for ``PeftModel.from_pretrained(base, path)`` or vLLM's ``--lora-modules``.
    """

    def load(self) -> str:
        path = Path(self._get_load_path())
        if not (path / "adapter_config.json").is_file():
            raise DatasetError(f"no peft adapter at {path}: run the finetune pipeline")
        return str(path)

    def save(self, data: Any) -> None:
        """``data``: the trained model, or ``{"model": ..., "serving": contract}`` to save the
        student's serving contract (``serving.json``) with it."""
        contract = data.get("serving") if isinstance(data, dict) else None
        data = data["model"] if isinstance(data, dict) else data
        peft_model = getattr(
            getattr(data, "model", None), "model", data
        )  # LudwigModel -> PeftModel
        if not hasattr(peft_model, "peft_config"):
            raise DatasetError("PeftAdapterDataset saves a peft model (train with an adapter)")
        path = Path(self._get_save_path())
        shutil.rmtree(path, ignore_errors=True)
        peft_model.save_pretrained(str(path))
        if contract is not None:
            (path / "serving.json").write_text(json.dumps(contract, indent=2))


class ExportedModelDataset(_VersionedDirectory):
    """A model exported for a serving engine (an OpenVINO IR directory, a GGUF adapter folder).

    The export node builds the directory in a temporary place and returns its path; saving moves
    it under ``<filepath>/<version>/``. Loading gives the directory's path, which backends and
    servers open themselves. A directory holding ``export_skipped.txt`` instead of the marker
    is an export deliberately not made (its reason inside); the engine that is handed it says so.
    """

    def __init__(
        self,
        filepath: str,
        marker: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=filepath, version=version, metadata=metadata)
        self._marker = marker  # a file every complete export holds

    def _complete(self, path: Path) -> bool:
        return (path / self._marker).is_file() or (path / SKIPPED_FILE).is_file()

    def load(self) -> str:
        path = Path(self._get_load_path())
        if not self._complete(path):
            raise DatasetError(f"no exported model at {path} ({self._marker} missing)")
        return str(path)

    def save(self, data: str) -> None:
        source = Path(data)
        if not self._complete(source):
            raise DatasetError(f"{source} is not a complete export ({self._marker} missing)")
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, path)
