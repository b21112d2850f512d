"""QLoRA compute dtype on this machine: Ludwig QLoRA seconds per step in float32 and bfloat16.

    .venv/bin/python benchmarks/compute_dtype.py [--steps 5] [--rounds 3] [--data PARQUET]

After `make run`: the steps train on the default run's own training rows (``distill_train``,
batch 4, the shipped finetune parameters), so step times reflect the demo's real row lengths.
Each round runs each dtype once in a fresh process, the order alternating; the first step of
each process is excluded. Prints medians and min-max over the rounds (docs/benchmarks.md,
"QLoRA compute dtype").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

WORKER = """
import json, statistics, sys
sys.path.insert(0, {here!r})
import pandas as pd
from finetune_step_time import ludwig_steps
from product_descgen.models import resolve_model_dir
from product_descgen.project_config import load_project_models, load_project_params
from product_descgen.runtime import RuntimeParams, set_threads
from product_descgen.training import ludwig_compat
from product_descgen.training.config import FinetuneParams, build_ludwig_config
project = load_project_params()
set_threads(RuntimeParams.model_validate(project.get("runtime", {{}})).threads)
ludwig_compat.apply()
project["finetune"]["ludwig"]["quantization"]["bnb_4bit_compute_dtype"] = {dtype!r}
params = FinetuneParams.model_validate(project["finetune"])
models = load_project_models()
base = resolve_model_dir(models.student, models.cache_dir)
data = pd.read_parquet({data!r})[[params.input_column, params.target_column]]
data = data.head(({steps} + 1) * 4)
times = ludwig_steps(build_ludwig_config(params, base, list(data.columns)), data, 4)
print(json.dumps({{"seconds_per_step": statistics.median(times[1:])}}))
"""


def step_s(dtype: str, steps: int, data: Path) -> float:
    code = WORKER.format(here=str(HERE), dtype=dtype, steps=steps, data=str(data))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--data", type=Path, default=ROOT / "data/05_model_input/distill_train.parquet"
    )
    args = parser.parse_args()
    dtypes = ["float32", "bfloat16"]
    times: dict[str, list[float]] = {d: [] for d in dtypes}
    for round_ in range(args.rounds):
        for dtype in dtypes if round_ % 2 == 0 else dtypes[::-1]:
            times[dtype].append(step_s(dtype, args.steps, args.data))
            print(json.dumps({"round": round_, dtype: times[dtype][-1]}), flush=True)  # noqa: T201
    for dtype, values in times.items():
        print(  # noqa: T201
            f"| {dtype} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |"
        )
    ratio = statistics.median(times["float32"]) / statistics.median(times["bfloat16"])
    print(f"bfloat16 speed-up: {ratio:.2f}x")  # noqa: T201


if __name__ == "__main__":
    main()
