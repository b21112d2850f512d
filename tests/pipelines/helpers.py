"""Run the project's pipelines in a throwaway copy of the project with tiny local models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from product_descgen.project_config import load_project_params


def tiny_models_block(project: Path, tiny_model_dir: Path, env: str | None = None) -> dict:
    """The ``models`` parameters with teacher and student replaced by the tiny model."""
    models = load_project_params(env, root=project)["models"]
    tiny = {"gguf_package": None, "path": str(tiny_model_dir)}
    return {**models, "teacher": tiny, "student": tiny}


def run_pipeline(
    project: Path,
    tiny_model_dir: Path,
    pipeline: str,
    env: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """``kedro run --pipeline PIPELINE`` in ``project``, in process."""
    bootstrap_project(project)
    # Runtime parameters are validated per top-level block and deep-merged: restate the block.
    extra = {"models": tiny_models_block(project, tiny_model_dir, env), **params}
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=extra) as session:
            return session.run(pipeline_names=[pipeline])
    finally:  # kedro-mlflow's run is process-global: never let it leak into the next test
        import mlflow

        while mlflow.active_run():
            mlflow.end_run()
