"""The student's OpenVINO export is made only when OpenVINO serves the student."""

from __future__ import annotations

import pytest

from product_descgen.datasets import ExportedModelDataset
from product_descgen.llm.backends import Connection
from product_descgen.llm.openvino_backend import OpenVINOBackend
from product_descgen.llm.types import GenerationSettings
from product_descgen.pipelines.finetune.nodes import export_student_for_openvino


def test_another_backend_gets_a_recorded_skip_not_a_merge(tmp_path):
    # no adapter exists at this path: a merge would fail, a skip never opens it
    out = export_student_for_openvino(str(tmp_path / "adapter"), Connection(backend="transformers"))
    dataset = ExportedModelDataset(str(tmp_path / "student_openvino"), marker="openvino_model.xml")
    dataset.save(out)
    loaded = dataset.load()
    with pytest.raises(FileNotFoundError, match="served by the transformers backend"):
        OpenVINOBackend(loaded, GenerationSettings())


def test_an_incomplete_export_is_refused(tmp_path):
    dataset = ExportedModelDataset(str(tmp_path / "student_openvino"), marker="openvino_model.xml")
    (tmp_path / "partial").mkdir()
    with pytest.raises(Exception, match="not a complete export"):
        dataset.save(str(tmp_path / "partial"))
