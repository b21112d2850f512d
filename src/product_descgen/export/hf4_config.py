"""A transformers 5 ``config.json`` rewritten for transformers 4.x, which the export toolchain runs.

transformers 5 stores rotary settings as ``rope_parameters`` (one dict, or one per attention
type); 4.x reads top-level ``rope_theta``/``rope_scaling`` (Gemma 3: ``rope_local_base_freq`` for
its sliding layers) and silently falls back to its defaults when they are missing, which gives a
different model (SmolLM2's theta is 100000, 4.x's Llama default 10000). Only that key is rewritten;
a config without it is returned unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# The export toolchain's transformers (requirements/export.txt); the rewrite is for 4.x readers.
TOOLCHAIN_TRANSFORMERS_MAJOR = 4


def _rope(params: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
    """``rope_theta`` and 4.x's ``rope_scaling`` (None for plain RoPE) from one parameter set."""
    theta = float(params["rope_theta"])
    scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    if scaling.get("rope_type", "default") == "default":
        return theta, None
    return theta, scaling


def hf4_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``rope_parameters`` turned into the keys transformers 4.x reads."""
    if "rope_parameters" not in config:
        return dict(config)
    out = {k: v for k, v in config.items() if k != "rope_parameters"}
    params = config["rope_parameters"]
    if "rope_theta" in params:  # one set for every layer
        out["rope_theta"], out["rope_scaling"] = _rope(params)
        return out
    unknown = set(params) - {"full_attention", "sliding_attention"}
    if unknown or "full_attention" not in params:
        raise ValueError(f"rope_parameters per layer type {sorted(params)}: not understood")
    out["rope_theta"], out["rope_scaling"] = _rope(params["full_attention"])
    if "sliding_attention" in params:
        local_theta, local_scaling = _rope(params["sliding_attention"])
        if local_scaling is not None:
            raise ValueError("scaled RoPE on sliding-window layers has no transformers 4.x key")
        out["rope_local_base_freq"] = local_theta
    return out


def stage_for_hf4(model_dir: Path, staged: Path) -> Path:
    """A copy of ``model_dir`` for 4.x readers: its files linked, ``config.json`` rewritten."""
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for item in Path(model_dir).iterdir():
        if item.name != "config.json":
            (staged / item.name).symlink_to(item.resolve())
    config = json.loads((Path(model_dir) / "config.json").read_text())
    (staged / "config.json").write_text(json.dumps(hf4_config(config), indent=2))
    return staged
