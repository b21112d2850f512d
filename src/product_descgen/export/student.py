"""The trained student as artifacts that serving engines load: its LoRA adapter merged into the
base and exported for OpenVINO, and the adapter as a GGUF LoRA for llama.cpp and Ollama."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from product_descgen.export.openvino import Weights, export_openvino
from product_descgen.training.export import merge_adapter

logger = logging.getLogger(__name__)

GGUF_FILE = "student-lora.gguf"
SKIPPED_FILE = "export_skipped.txt"  # an export deliberately not made, with the reason


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
    return out_dir


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
