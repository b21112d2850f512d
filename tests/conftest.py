"""Shared fixtures: offline environment, tiny local models, throwaway Kedro projects."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Before anything imports transformers or kedro: offline, quiet, one thread per process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the package's user cache (model fingerprints) in the run's own folder, not the user's
os.environ["PRODUCT_DESCGEN_CACHE"] = tempfile.mkdtemp(prefix="product_descgen-cache-")
atexit.register(shutil.rmtree, os.environ["PRODUCT_DESCGEN_CACHE"], ignore_errors=True)

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

from tests.tiny_models import build_tiny_llama  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding ``heavy`` tests run first, then those holding ``slow`` ones (each
    module's tests stay together and in order): with two test processes the longest tests start
    early, and the run ends on short ones instead of one process finishing a long test while the
    other waits. (pytest-xdist's worksteal hands each process a contiguous half and lets the idle
    one take from the end of the other's queue: what comes first is run first.)"""
    heavy = {item.path for item in items if item.get_closest_marker("heavy")}
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path not in heavy, item.path not in slow))


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]
) -> Path:
    """``build(path)``'s directory, made once per test run: under pytest-xdist every worker
    shares it (the first to take the lock builds it, the others wait and reuse it), so slow
    session fixtures (OpenVINO exports) are not paid once per worker. Reused only when complete
    (the ``.built`` marker is written last)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's temp dir, above each worker's own
    path, done = root / name, root / f"{name}.built"
    with FileLock(root / f"{name}.lock"):
        if not done.is_file():
            shutil.rmtree(path, ignore_errors=True)
            build(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama model with the real SmolLM2 tokenizer, built in seconds."""
    return built_once(tmp_path_factory, "tiny_llama", build_tiny_llama)


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's config and demo data in a temp dir (cwd), so runs write nothing here."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "src").mkdir()  # the package itself is installed (editable) in the venv
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf")
    # MLflow keeps one store per tracking URI in the process: the relative URI would send a
    # later test's runs to the first test's database (its connections opened there)
    mlflow_yml = tmp_path / "conf" / "base" / "mlflow.yml"
    relative = "sqlite:///data/09_tracking/mlflow.db"
    assert relative in mlflow_yml.read_text()
    mlflow_yml.write_text(
        mlflow_yml.read_text().replace(relative, f"sqlite:///{tmp_path}/data/09_tracking/mlflow.db")
    )
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

    return built_once(
        tmp_path_factory, "tiny_ov_fp32", lambda out: export_openvino(tiny_model_dir, out, "fp32")
    )


@pytest.fixture(scope="session")
def tiny_openvino_int8_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported for OpenVINO with int8 weights (the catalog's teacher and judge)."""
    from product_descgen.export.openvino import export_openvino

    return built_once(
        tmp_path_factory, "tiny_ov_int8", lambda out: export_openvino(tiny_model_dir, out, "int8")
    )
