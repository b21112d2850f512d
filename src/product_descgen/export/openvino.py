"""Export a Hugging Face model directory to an OpenVINO IR directory the CPU engine serves.

The weights go through OpenVINO's own exporter (``optimum-cli export openvino``, with NNCF weight
compression) in the export toolchain; meanwhile the tokenizer is converted in the project's
environment (``openvino_tokenizers``, for the engine's stop strings), and the Hugging Face
tokenizer is saved beside the IR (the backend tokenises with it, as the ``transformers`` path
does).

    python -m product_descgen.export.openvino MODEL_DIR OUT_DIR --weights int8
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from functools import partial
from pathlib import Path
from typing import Literal

from product_descgen.export import toolchain
from product_descgen.export.hf4_config import stage_for_hf4
from product_descgen.models import model_fingerprint
from product_descgen.runtime import LOG_FORMAT

logger = logging.getLogger(__name__)

Weights = Literal["fp32", "int8", "int4"]
# int4: symmetric, groups of 64 weights (QLoRA's nf4 block size), every layer NNCF would take.
WEIGHT_ARGS: dict[str, list[str]] = {
    "fp32": ["--weight-format", "fp32"],
    "int8": ["--weight-format", "int8"],
    "int4": ["--weight-format", "int4", "--group-size", "64", "--ratio", "1.0", "--sym"],
}
RECORD = "product_descgen_export.json"


def toolchain_transformers_major() -> int:
    """The major version of transformers in the export toolchain."""
    return int(toolchain.package_version("transformers").split(".")[0])


def convert_tokenizer(model_dir: Path, out_dir: Path) -> None:
    """The model's tokenizer as OpenVINO tokenizer/detokenizer models, plus its HF files."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer as ov_convert
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder, decoder = ov_convert(tokenizer, with_detokenizer=True)
    ov.save_model(encoder, out_dir / "openvino_tokenizer.xml")
    ov.save_model(decoder, out_dir / "openvino_detokenizer.xml")
    tokenizer.save_pretrained(out_dir)


def is_exported(out_dir: str | Path, source_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds an export of ``source_dir`` as it is now (the record's
    fingerprint of the source matches: a model replaced at its path is exported again)."""
    record = Path(out_dir) / RECORD
    if not record.is_file():
        return False
    recorded = json.loads(record.read_text()).get("source_fingerprint")
    if recorded != model_fingerprint(source_dir):
        logger.warning(
            "%s was exported from another state of %s (or before exports were fingerprinted): "
            "exporting it again", out_dir, source_dir,
        )  # fmt: skip
        return False
    return True


def recorded_weights(out_dir: str | Path) -> str | None:
    """The weight format :func:`export_openvino` recorded for ``out_dir`` (None: not recorded)."""
    record = Path(out_dir) / RECORD
    return json.loads(record.read_text()).get("weights") if record.is_file() else None


def export_openvino(model_dir: str | Path, out_dir: str | Path, weights: Weights) -> Path:
    """``model_dir`` exported to ``out_dir`` with ``weights`` (written atomically; the record
    ``product_descgen_export.json`` says from what and how)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if weights not in WEIGHT_ARGS:
        raise ValueError(f"weights must be one of {sorted(WEIGHT_ARGS)}, got {weights!r}")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a Hugging Face model directory")
    work = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = model_dir
    if toolchain_transformers_major() < 5:  # noqa: PLR2004 - transformers 5 wrote the config
        source = stage_for_hf4(model_dir, work / "staged")
    ir_dir, tokenizer_dir = work / "ir", work / "tokenizer"
    tokenizer_dir.mkdir()
    toolchain.run(
        [toolchain.python(), "-m", "optimum.commands.optimum_cli", "export", "openvino",
         "--model", source, "--task", "text-generation-with-past", *WEIGHT_ARGS[weights],
         "--disable-convert-tokenizer", ir_dir],
        work / "export.log", f"OpenVINO export of {model_dir.name} ({weights})",
        meanwhile=partial(convert_tokenizer, model_dir, tokenizer_dir),  # while it exports
    )  # fmt: skip
    for path in tokenizer_dir.iterdir():
        path.rename(ir_dir / path.name)
    (ir_dir / RECORD).write_text(
        json.dumps(
            {
                "source": str(model_dir),
                "source_fingerprint": model_fingerprint(model_dir),
                "weights": weights,
                "weight_args": WEIGHT_ARGS[weights],
            }  # fmt: skip
        )
    )
    shutil.move(work / "export.log", ir_dir / "export.log")
    shutil.rmtree(out_dir, ignore_errors=True)
    ir_dir.rename(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    logger.info("OpenVINO model (%s) ready: %s", weights, out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--weights", choices=sorted(WEIGHT_ARGS), default="int8")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    export_openvino(args.model_dir, args.out_dir, args.weights)


if __name__ == "__main__":
    main()
