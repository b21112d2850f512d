"""Typed finetune parameters and the Ludwig LLM config built from them.

The Ludwig config is a parameters block (``finetune.ludwig``); the project fills in what it
owns (base model, prompt template, feature names) and validates the result with Ludwig's own
schema, so a bad setting fails with a clear message before any training starts.
"""

from __future__ import annotations

import copy
import difflib
import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from product_descgen.llm.types import GenerationSettings
from product_descgen.training.vices import ViceThresholds


class ProbeParams(BaseModel):
    """The fixed validation products the model describes after every epoch, decoded as the
    student is served (``generation``: ``globals.student_generation``, with the stop strings
    of the serving contract), so the vices measured are the ones users would see."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: PositiveInt = 8
    generation: GenerationSettings = GenerationSettings(max_new_tokens=160)


class RayParams(BaseModel):
    """Where Ludwig's Ray backend (``ludwig.backend.type: ray``) trains: an existing cluster's
    address (``ray://head:10001``, ``auto``), else ``RAY_ADDRESS`` if set, else a Ray started on
    this machine for the run (with ``num_cpus``) and stopped after it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = None
    num_cpus: PositiveInt | None = None  # a Ray started for the run: CPUs it may use


class FinetuneParams(BaseModel):
    """All finetune settings; ``ludwig`` is passed to Ludwig after the project fills it in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_column: str = "input_text"
    target_column: str = "target"
    prompt_template: str = "### Product\n{input_text}\n### Description\n"
    quantization: bool = True  # QLoRA (4-bit base); false = plain LoRA on the full-precision base
    # auto: Ludwig trains on a GPU when torch sees one, else on the CPU; cuda: a GPU is required
    # (a run that trains fails before any node without one: conf/gpu trained 12 epochs on CPUs)
    device: Literal["auto", "cuda"] = "auto"
    probe: ProbeParams = ProbeParams()
    vices: ViceThresholds = ViceThresholds()
    ludwig: dict[str, Any] = Field(default_factory=dict)
    work_dir: Path = Path("data/06_models/student_training")  # checkpoints, for resuming
    # a checkpoint made with other data or config: fail (default) or discard it and restart
    on_changed_checkpoint: Literal["fail", "restart"] = "fail"
    ray: RayParams = RayParams()  # read when ludwig.backend.type is ray


COMPUTE_DTYPE = "bnb_4bit_compute_dtype"  # in finetune.ludwig.quantization; "auto" is resolved
_CPU_BF16_FLAGS = re.compile(r"\b(?:avx512_bf16|amx_bf16)\b")


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX512-BF16 or AMX-BF16; Linux flags).
    Elsewhere bfloat16 matrix products are emulated and slower than float32."""
    try:
        return bool(_CPU_BF16_FLAGS.search(cpuinfo.read_text(errors="replace")))
    except OSError:
        return False


def auto_compute_dtype() -> str:
    """QLoRA's compute dtype for this machine: bfloat16 where it is native (a CUDA GPU that
    supports it, a CPU with bf16 instructions), float16 on older GPUs, float32 otherwise."""
    import torch

    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_has_bf16() else "float32"


def template_fields(template: str) -> set[str]:
    """Names the prompt template reads (``{input_text}`` -> ``input_text``)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def build_ludwig_config(
    params: FinetuneParams, base_model: str, columns: list[str] | None = None
) -> dict[str, Any]:
    """The full Ludwig config, checked against the data's columns when given.

    ``quantization.bnb_4bit_compute_dtype: auto`` becomes this machine's dtype
    (:func:`auto_compute_dtype`), so the config Ludwig trains with, and the one saved beside the
    model, names the dtype used.

    Raises ``ValueError`` naming the problem: a template field that is not a column, a base
    model path that does not exist, a Ludwig setting that Ludwig's schema rejects.
    """
    missing = template_fields(params.prompt_template) - set(
        columns or template_fields(params.prompt_template)
    )
    if missing:
        raise ValueError(
            f"finetune.prompt_template names column(s) {sorted(missing)} that the training data "
            f"lacks (columns: {sorted(columns or [])})"
        )
    if base_model.startswith(("/", ".")) and not (Path(base_model) / "config.json").is_file():
        raise ValueError(f"the student base model {base_model} does not exist (no config.json)")
    config = copy.deepcopy(params.ludwig)
    config.update(
        model_type="llm",
        base_model=base_model,
        prompt={"template": params.prompt_template},
        input_features=[{"name": params.input_column, "type": "text"}],
        output_features=[{"name": params.target_column, "type": "text"}],
    )
    if not params.quantization:
        config.pop("quantization", None)
    quantization = config.get("quantization")
    if isinstance(quantization, dict) and quantization.get(COMPUTE_DTYPE) == "auto":
        quantization[COMPUTE_DTYPE] = auto_compute_dtype()
    validate_ludwig_config(config)
    return config


# Settings Ludwig's schema takes at any value that must be above zero ("auto" where Ludwig
# picks one); a negative epoch count or learning rate would otherwise reach the trainer.
POSITIVE = (
    "trainer.epochs", "trainer.learning_rate", "trainer.batch_size",
    "trainer.gradient_accumulation_steps", "adapter.r", "adapter.alpha",
    "generation.max_new_tokens",
)  # fmt: skip


def _unknown_keys(given: Any, parsed: Any, path: str = "") -> list[str]:
    """Keys of ``given`` (the user's config, upgraded as Ludwig upgrades deprecated keys) that
    the schema object ``parsed`` has no field for: settings Ludwig dropped without a word, with
    the nearest field's name. Free-form blocks (``backend``: a dict) are not looked into."""
    if not isinstance(given, dict) or isinstance(parsed, dict) or parsed is None:
        return []
    found = []
    for key, value in given.items():
        if hasattr(parsed, str(key)):
            found += _unknown_keys(value, getattr(parsed, str(key)), f"{path}{key}.")
        else:
            fields = [f for f in vars(parsed) if not f.startswith("_")]
            near = difflib.get_close_matches(str(key), fields, n=1)
            found.append(f"{path}{key}" + (f" (did you mean {near[0]}?)" if near else ""))
    return found


def _not_positive(config: dict[str, Any]) -> list[str]:
    bad = []
    for path in POSITIVE:
        value: Any = config
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            bad.append(f"finetune.ludwig.{path} is {value}: it must be above 0")
    return bad


def validate_ludwig_config(config: dict[str, Any]) -> None:
    """Ludwig's own schema check, as a ``ValueError`` that says where the setting lives; and
    what that schema lets through: keys it does not know (it drops them, leaving its default
    in place) and settings that must be above zero."""
    from ludwig.error import ConfigValidationError
    from ludwig.schema.model_types.base import ModelConfig
    from ludwig.utils.backward_compatibility import upgrade_config_dict_to_latest_version

    try:
        parsed = ModelConfig.from_dict(copy.deepcopy(config))
    except (ConfigValidationError, ValueError, TypeError) as err:
        raise ValueError(f"invalid Ludwig config in finetune.ludwig: {err}") from None
    upgraded = upgrade_config_dict_to_latest_version(copy.deepcopy(config))
    problems = [
        f"unknown key finetune.ludwig.{key}" for key in _unknown_keys(upgraded, parsed)
    ] + _not_positive(config)
    if problems:
        raise ValueError("invalid Ludwig config: " + "; ".join(problems))
