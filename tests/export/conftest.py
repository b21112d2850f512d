"""Export tests keep what they make: the exporters build their results in new temporary
directories (the catalog's dataset moves them into place in a run), so each test's land under
its own ``tmp_path`` instead of the machine's temp directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def temp_dirs_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
