"""Run the project's pipelines in a throwaway copy of the project with tiny local models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def use_tiny_models(project: Path, tiny_model_dir: Path, env: str | None = None) -> None:
    """The tiny model as teacher and student, in the environment's globals.yml (as a user points
    the project at their models); the rest of that file is kept."""
    path = project / "conf" / (env or "local") / "globals.yml"
    current = yaml.safe_load(path.read_text()) if path.is_file() else {}
    tiny = {"gguf_package": None, "path": str(tiny_model_dir)}
    models = {**(current or {}).get("models", {}), "teacher": tiny, "student": tiny}
    path.write_text(yaml.safe_dump({**(current or {}), "models": models}))


def override_connection(
    project: Path, file: str, name: str, connection: dict[str, Any], role: str,
    env: str | None = None,
) -> None:  # fmt: skip
    """A catalog file in the environment (default conf/local) holding one LLM connection entry,
    ``name``, serving the ``role`` model (teacher, student) of globals.yml."""
    entry = {
        "type": "product_descgen.datasets.LLMConnectionDataset", "connection": connection,
        "model": f"${{globals:models.{role}}}", "cache_dir": "${globals:models.cache_dir}",
    }  # fmt: skip
    (project / "conf" / (env or "local") / file).write_text(yaml.safe_dump({name: entry}))


def run_pipeline(
    project: Path,
    tiny_model_dir: Path,
    pipeline: str,
    env: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """``kedro run --pipeline PIPELINE`` in ``project``, in process."""
    bootstrap_project(project)
    use_tiny_models(project, tiny_model_dir, env)
    # Runtime parameters are validated per top-level block and deep-merged: restate the block.
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            return session.run(pipeline_names=[pipeline])
    finally:  # kedro-mlflow's run is process-global: never let it leak into the next test
        import mlflow

        while mlflow.active_run():
            mlflow.end_run()
