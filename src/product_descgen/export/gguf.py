"""The student's LoRA adapter as a GGUF LoRA file, for llama.cpp (``llama-server --lora``) and
Ollama (``ADAPTER`` in a Modelfile), beside the base model's own GGUF.

The conversion is llama.cpp's ``convert_lora_to_gguf.py`` (unpacked into the export toolchain by
``make install``): it maps peft's tensor names onto llama.cpp's and applies the same row order the
base model's GGUF conversion applied, which a hand-written writer would have to keep in step with.
Only the base model's config is read, not its weights.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from product_descgen.export import toolchain

logger = logging.getLogger(__name__)

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def export_lora_gguf(
    adapter_dir: str | Path, base_dir: str | Path, out_file: str | Path, outtype: str = "f32"
) -> Path:
    """Convert the peft adapter in ``adapter_dir`` (trained on the Hugging Face model in
    ``base_dir``) to a GGUF LoRA at ``out_file``, written whole or not at all."""
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype {outtype!r}: one of {', '.join(OUTTYPES)}")
    adapter_dir, base_dir, out_file = Path(adapter_dir), Path(base_dir), Path(out_file)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} is not a peft adapter (no adapter_config.json)")
    if not (base_dir / "config.json").is_file():
        raise FileNotFoundError(f"{base_dir} is not a Hugging Face model directory")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lora-gguf-", dir=out_file.parent) as tmp:
        partial = Path(tmp) / out_file.name
        toolchain.run(
            [
                toolchain.python(),
                toolchain.llama_cpp_dir() / "convert_lora_to_gguf.py",
                "--base", base_dir, "--outtype", outtype, "--outfile", partial, adapter_dir,
            ],
            log_file=out_file.parent / "convert_lora_to_gguf.log",
            what=f"GGUF LoRA export of {adapter_dir}",
        )  # fmt: skip
        if not partial.is_file():
            raise toolchain.ExportToolchainError(f"the converter wrote no file for {adapter_dir}")
        shutil.move(partial, out_file)
    logger.info("GGUF LoRA written: %s (%s)", out_file, outtype)
    return out_file
