"""Shared fixtures: offline environment, tiny local models, throwaway Kedro projects."""

from __future__ import annotations

import os

# Before anything imports transformers or kedro: offline, quiet, one thread per process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.tiny_models import build_tiny_llama  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama model with the real SmolLM2 tokenizer, built in seconds."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's config and demo data in a temp dir (cwd), so runs write nothing here."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "src").mkdir()  # the package itself is installed (editable) in the venv
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf")
    for layer in (PROJECT_ROOT / "data").iterdir():
        (tmp_path / "data" / layer.name).mkdir(parents=True)
    for raw in (PROJECT_ROOT / "data" / "01_raw").glob("*.jsonl"):
        shutil.copy(raw, tmp_path / "data" / "01_raw")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_openvino_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported for OpenVINO with float32 weights (through .venv-export)."""
    from product_descgen.export.openvino import export_openvino

    return export_openvino(tiny_model_dir, tmp_path_factory.mktemp("tiny_ov") / "fp32", "fp32")


@pytest.fixture(scope="session")
def tiny_openvino_int8_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported for OpenVINO with int8 weights (the catalog's teacher and judge)."""
    from product_descgen.export.openvino import export_openvino

    return export_openvino(tiny_model_dir, tmp_path_factory.mktemp("tiny_ov") / "int8", "int8")
