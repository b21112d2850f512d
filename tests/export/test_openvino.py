import json

import pytest

from product_descgen.export.openvino import RECORD, export_openvino, is_exported
from product_descgen.export.student import student_for_openvino
from product_descgen.llm.backends import Connection
from product_descgen.llm.hf_backend import TransformersBackend
from product_descgen.llm.openvino_backend import OpenVINOBackend
from product_descgen.llm.types import GenerationSettings, Request
from product_descgen.models import model_fingerprint
from tests.tiny_models import build_tiny_adapter

pytestmark = pytest.mark.slow


def test_export_writes_the_ir_both_tokenizers_and_a_record(tiny_model_dir, tiny_openvino_dir):
    names = {p.name for p in tiny_openvino_dir.iterdir()}
    assert {"openvino_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml"} <= names
    assert "tokenizer.json" in names  # the Hugging Face tokenizer the backend tokenises with
    record = json.loads((tiny_openvino_dir / RECORD).read_text())
    assert record["source"] == str(tiny_model_dir) and record["weights"] == "fp32"
    assert record["source_fingerprint"] == model_fingerprint(tiny_model_dir)
    assert not tiny_openvino_dir.with_name(tiny_openvino_dir.name + ".tmp").exists()


def test_an_export_counts_only_for_the_source_it_was_made_from(tmp_path, caplog):
    source, out = tmp_path / "model", tmp_path / "export"
    source.mkdir()
    out.mkdir()
    (source / "config.json").write_text("{}")
    assert not is_exported(out, source)  # no record: not exported
    (out / RECORD).write_text(json.dumps({"source_fingerprint": model_fingerprint(source)}))
    assert is_exported(out, source)
    (source / "config.json").write_text('{"replaced": true}')  # a checkpoint replaced in place
    with caplog.at_level("WARNING"):
        assert not is_exported(out, source)
    assert "exporting it again" in caplog.text
    (out / RECORD).write_text(json.dumps({"weights": "int8"}))  # made before fingerprints
    assert not is_exported(out, source)


def test_unknown_weights_and_missing_models_are_clear_errors(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match="weights"):
        export_openvino(tiny_model_dir, tmp_path / "x", "int3")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model directory"):
        export_openvino(tmp_path, tmp_path / "y", "fp32")


def test_exported_student_writes_what_peft_writes(tiny_model_dir, tmp_path):
    """The adapter merged and exported in float32 gives peft's greedy text, token for token
    (both compute in float32; the merge only reorders the same sums)."""
    build_tiny_adapter(tiny_model_dir, tmp_path / "adapter")

    exported = student_for_openvino(tmp_path / "adapter", "fp32")
    settings = GenerationSettings(max_new_tokens=30, repetition_penalty=1.1)
    reqs = [Request(key=str(i), prompt=f"### Product\nitem {i} " * (i + 1)) for i in range(6)]
    cpu = Connection(backend="transformers", device="cpu")
    peft_backend = TransformersBackend(
        str(tiny_model_dir), settings, cpu, adapter=str(tmp_path / "adapter")
    )
    plain_backend = TransformersBackend(str(tiny_model_dir), settings, cpu)
    engine = OpenVINOBackend(
        str(exported), settings, Connection(backend="openvino", weights="fp32", precision="f32")
    )

    def texts(backend):
        return {r.key: r.text for chunk in backend.generate(reqs) for r in chunk}

    assert texts(engine) == texts(peft_backend)
    assert texts(engine) != texts(plain_backend)  # the adapter is really in the export
