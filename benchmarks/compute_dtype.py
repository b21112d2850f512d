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
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from finetune_step_time import ROOT, step_s_in_fresh_process  # noqa: E402

from product_descgen.project_config import load_project_params  # noqa: E402
from product_descgen.runtime import RuntimeParams  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--data", type=Path, default=ROOT / "data/05_model_input/distill_train.parquet"
    )
    args = parser.parse_args()
    runtime = RuntimeParams.model_validate(load_project_params().get("runtime", {}))
    threads = runtime.resolved_threads()
    dtypes = ["float32", "bfloat16"]
    times: dict[str, list[float]] = {d: [] for d in dtypes}
    for round_ in range(args.rounds):
        for dtype in dtypes if round_ % 2 == 0 else dtypes[::-1]:
            times[dtype].append(step_s_in_fresh_process(threads, args.steps, dtype, args.data))
            print(json.dumps({"round": round_, dtype: times[dtype][-1]}), flush=True)  # noqa: T201
    for dtype, values in times.items():
        print(  # noqa: T201
            f"| {dtype} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |"
        )
    ratio = statistics.median(times["float32"]) / statistics.median(times["bfloat16"])
    print(f"bfloat16 speed-up: {ratio:.2f}x")  # noqa: T201


if __name__ == "__main__":
    main()
