"""Read the project's merged configuration (base + env) outside a Kedro run, e.g. from scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load_project_config(
    kind: str, env: str | None = None, root: Path = PROJECT_ROOT
) -> dict[str, Any]:
    """Configuration of ``kind`` ("parameters", "catalog", "globals") as ``kedro run --env ENV``
    sees it."""
    from product_descgen.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(root / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return dict(loader[kind])


def load_project_params(env: str | None = None, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Parameters as ``kedro run --env ENV`` would see them."""
    return load_project_config("parameters", env, root)


def load_project_models(env: str | None = None, root: Path = PROJECT_ROOT) -> Any:
    """The ``models`` block of ``globals.yml`` (teacher, student, judge, cache dir), typed."""
    from product_descgen.models import ModelsParams

    return ModelsParams.model_validate(load_project_config("globals", env, root)["models"])
