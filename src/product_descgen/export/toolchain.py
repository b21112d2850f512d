"""The export toolchain: a separate virtual environment (``make install`` builds ``.venv-export``)
holding OpenVINO's exporter and llama.cpp's converters, run as subprocesses.

Its own environment because optimum-intel pins transformers below the project's version.
``PRODUCT_DESCGEN_EXPORT_VENV`` points at another one.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

ENV_VAR = "PRODUCT_DESCGEN_EXPORT_VENV"
_PROJECT_ROOT = Path(__file__).resolve().parents[3]


class ExportToolchainError(RuntimeError):
    """The export toolchain is missing, or one of its commands failed."""


def venv_dir() -> Path:
    """The export environment: $PRODUCT_DESCGEN_EXPORT_VENV, else the project's ``.venv-export``."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else _PROJECT_ROOT / ".venv-export"


def python() -> Path:
    """The export environment's interpreter (a clear error when it has not been built)."""
    exe = venv_dir() / "bin" / "python"
    if not exe.is_file():
        raise ExportToolchainError(
            f"the export toolchain is not installed at {venv_dir()}: run `make install` "
            f"(or set {ENV_VAR})"
        )
    return exe


def llama_cpp_dir() -> Path:
    """llama.cpp's conversion scripts (with their own ``gguf-py``), unpacked by ``make install``."""
    path = venv_dir() / "llama.cpp"
    if not (path / "convert_lora_to_gguf.py").is_file():
        raise ExportToolchainError(
            f"llama.cpp's converters are not at {path}: run `make install` (or set {ENV_VAR})"
        )
    return path


def run(
    args: Sequence[str | Path],
    log_file: Path,
    what: str,
    timeout_s: float = 3600,
    meanwhile: Callable[[], object] | None = None,
) -> None:
    """Run ``args`` (a command of the export environment), its output kept in ``log_file``;
    a failure raises with the log's tail. ``meanwhile``: work of this process done while the
    command runs (the command is stopped if it raises)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{python().parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    logger.info("%s (log: %s)", what, log_file)
    with log_file.open("w") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [str(a) for a in args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            if meanwhile is not None:
                meanwhile()
            returncode = process.wait(max(0.0, timeout_s - (time.monotonic() - started)))
        finally:
            if process.poll() is None:  # meanwhile failed, or the timeout passed
                process.kill()
                process.wait()
    if returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise ExportToolchainError(f"{what} failed (exit {returncode}):\n{tail}")


def package_version(name: str) -> str:
    """The version of package ``name`` installed in the export environment (read from its
    metadata: no import)."""
    done = subprocess.run(
        [str(python()), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()
