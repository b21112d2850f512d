"""The served export must be the newest adapter's: a finetune run stopped between training and
export leaves an earlier adapter's export as the newest one."""

from __future__ import annotations

import json
import logging

import pytest

from product_descgen.export.openvino import RECORD
from product_descgen.export.student import ADAPTER_KEY, require_export_of
from product_descgen.models import model_fingerprint


def adapter(path, weights: bytes):
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text('{"r": 8}')
    (path / "adapter_model.safetensors").write_bytes(weights)
    return path


def export_of(path, made_from=None):
    path.mkdir(parents=True)
    record = {"weights": "int8"}
    if made_from:
        record[ADAPTER_KEY] = model_fingerprint(made_from)
    (path / RECORD).write_text(json.dumps(record))
    return path


def test_the_export_of_another_adapter_is_refused(tmp_path):
    old, new = adapter(tmp_path / "old", b"\x00" * 64), adapter(tmp_path / "new", b"\x01" * 64)
    exported = export_of(tmp_path / "export", made_from=old)
    require_export_of(exported, old)
    require_export_of(exported, adapter(tmp_path / "moved", b"\x00" * 64))  # the same files
    with pytest.raises(ValueError, match="made from another adapter.*export_student_for_openvino"):
        require_export_of(exported, new)


def test_an_export_without_the_record_is_served_with_a_warning(tmp_path, caplog):
    exported = export_of(tmp_path / "export")
    with caplog.at_level(logging.WARNING):
        require_export_of(exported, adapter(tmp_path / "a", b"\x00"))
    assert "does not record the adapter" in caplog.text
