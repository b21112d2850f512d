"""Kedro-Viz builds its static site with dataset previews (`make viz-build`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_kedro_viz_build_with_previews(project_copy: Path):
    kedro = Path(sys.executable).parent / "kedro"
    done = subprocess.run(
        [str(kedro), "viz", "build", "--include-previews"], cwd=project_copy,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    main = json.loads((project_copy / "build" / "api" / "main").read_text())
    names = {n["name"] for n in main["nodes"]}
    assert {"raw_products", "cost_speed_chart", "report_html", "student_adapter"} <= names
    layers = {n.get("layer") for n in main["nodes"] if n.get("type") == "data"}
    assert layers >= {"raw", "model_input", "models", "model_output", "reporting"}
    assert None not in layers  # every dataset drawn in a layer
    # layers whose data flow back (a model_output feeding a model_input) make Kedro-Viz turn
    # layers off ("circular dependency detected"): every pipeline's view is drawn in layers
    for name in ("__default__", "data_prep", "teacher_generation", "describe", "evaluation"):
        view = json.loads((project_copy / "build" / "api" / "pipelines" / name).read_text())
        assert view["layers"], name
    assert main["layers"][0] == "raw" and main["layers"][-1] == "reporting"
