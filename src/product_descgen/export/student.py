"""The trained student as artifacts that serving engines load: its LoRA adapter merged into the
base and exported for OpenVINO, and the adapter as a GGUF LoRA for llama.cpp and Ollama."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from product_descgen.export.openvino import RECORD, Weights, export_openvino
from product_descgen.models import model_fingerprint
from product_descgen.training.export import merge_adapter

logger = logging.getLogger(__name__)

GGUF_FILE = "student-lora.gguf"
SKIPPED_FILE = "export_skipped.txt"  # an export deliberately not made, with the reason
ADAPTER_KEY = "adapter_fingerprint"  # in the export's record: the adapter merged into it


def skipped_export(reason: str) -> Path:
    """A new directory that records why no export was made (the caller's dataset saves it)."""
    out_dir = Path(tempfile.mkdtemp(prefix="student-export-skipped-"))
    (out_dir / SKIPPED_FILE).write_text(f"{reason}\n")
    return out_dir


def base_model_dir(adapter_dir: str | Path) -> Path:
    """The base model the adapter was trained on (from its ``adapter_config.json``)."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return Path(config["base_model_name_or_path"])


def student_for_openvino(adapter_dir: str | Path, weights: Weights) -> Path:
    """The adapter merged into its full-precision base, exported with ``weights``; returns a
    new directory (the caller's dataset moves it into place)."""
    out_dir = Path(tempfile.mkdtemp(prefix="student-openvino-"))
    with tempfile.TemporaryDirectory(prefix="student-merged-") as tmp:
        merged = merge_adapter(adapter_dir, Path(tmp) / "merged")
        export_openvino(merged, out_dir, weights)
    record = json.loads((out_dir / RECORD).read_text())
    record[ADAPTER_KEY] = model_fingerprint(adapter_dir)
    (out_dir / RECORD).write_text(json.dumps(record))
    return out_dir


def require_export_of(exported_dir: str | Path, adapter_dir: str | Path) -> None:
    """Fail unless ``exported_dir`` was made from ``adapter_dir`` (by its files): the newest
    export of an earlier adapter, left when a finetune run stopped between training and export,
    would otherwise be served as the newly trained student. An export without the record
    (made before it was kept) is served with a warning."""
    record_path = Path(exported_dir) / RECORD
    if not record_path.is_file():
        return  # no export (a skipped one): the backend's own error says so
    made_from = json.loads(record_path.read_text()).get(ADAPTER_KEY)
    if made_from is None:
        logger.warning("%s does not record the adapter it was made from", exported_dir)
    elif made_from != model_fingerprint(adapter_dir):
        raise ValueError(
            f"the newest student_openvino ({exported_dir}) was made from another adapter than "
            f"the newest student_adapter ({adapter_dir}): the finetune run that trained it "
            "stopped before its export. Export it: kedro run --nodes "
            "export_student_for_openvino_node (with the run's --env)"
        )


def student_gguf(adapter_dir: str | Path, outtype: str = "f32") -> Path:
    """The adapter as a GGUF LoRA file in a new directory, with the base model it needs named in
    ``base_model.txt``: ``llama-server -m BASE.gguf --lora student-lora.gguf``."""
    from product_descgen.export.gguf import export_lora_gguf

    out_dir = Path(tempfile.mkdtemp(prefix="student-gguf-"))
    base = base_model_dir(adapter_dir)
    try:
        export_lora_gguf(adapter_dir, base, out_dir / GGUF_FILE, outtype)
    except Exception:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    (out_dir / "base_model.txt").write_text(f"{base}\n")
    return out_dir
