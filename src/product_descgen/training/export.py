"""Export a trained adapter merged into its base model: one plain model directory that any
transformers-compatible server loads without peft.

    .venv/bin/python -m product_descgen.training.export --adapter ADAPTER_DIR --out OUT_DIR

``ADAPTER_DIR`` is a ``student_adapter`` version (``data/06_models/student_adapter/<version>/
student_adapter``); the base model is the one named in its ``adapter_config.json``. The base is
loaded in full precision (a 4-bit base cannot be merged into exactly), the LoRA weights are
added in, and the result is saved with the base's tokenizer.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from product_descgen.runtime import LOG_FORMAT

logger = logging.getLogger(__name__)


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Merge the LoRA adapter into its base model and save the plain model to ``out_dir``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    config_file = adapter_dir / "adapter_config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"no peft adapter at {adapter_dir} (adapter_config.json missing)")
    base = json.loads(config_file.read_text())["base_model_name_or_path"]
    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(out_dir)
    logger.info("Merged %s into %s -> %s", adapter_dir, base, out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    merge_adapter(args.adapter, args.out, args.dtype)


if __name__ == "__main__":
    main()
