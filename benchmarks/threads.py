"""CPU threads per process: the default run's heavy stages with 1 and with 2 threads, alternated.

    .venv/bin/python benchmarks/threads.py [--products 16] [--rounds 2] [--threads 1 2] [--busy]

After `make run` (a trained and exported student). Serving: the evaluation's speed-test jobs
(teacher pipeline and student, as the catalog serves them) on Flipkart products, each in a
fresh process. Training: Ludwig QLoRA steps of the student (benchmarks/finetune_step_time.py's
batches), each in a fresh process. Every round runs every setting once, the order reversed
every other round; medians and min-max over the rounds (docs/benchmarks.md, "CPU threads").
``--busy``: a process spinning on one core throughout (a shared machine's other work). OpenMP's
wait policy is the package's (passive) unless ``OMP_WAIT_POLICY`` is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from finetune_step_time import step_s_in_fresh_process  # noqa: E402
from speed_comparison import SHARED, flipkart_items  # noqa: E402
from speed_setup import load_speed_jobs  # noqa: E402

from product_descgen.evaluation import speed  # noqa: E402
from product_descgen.runtime import ENV_VAR  # noqa: E402


def serve_tok_s(job: speed.SpeedJob, threads: int) -> float:
    os.environ[ENV_VAR] = str(threads)  # run_isolated hands threads() to the fresh process
    return speed.run_isolated(job, 3600)["generated_tokens_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--catalogue", type=Path, default=SHARED)
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    args = parser.parse_args()
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        run(args)
    finally:
        if burner:
            burner.kill()


def run(args: argparse.Namespace) -> None:
    _, teacher, student = load_speed_jobs()
    items = flipkart_items(args.products + 2, path=args.catalogue)
    update = {"items": items[2:], "warmup_items": items[:2]}
    jobs = {"teacher": teacher.model_copy(update=update),
            "student": student.model_copy(update=update)}  # fmt: skip
    runs: dict[str, list[float]] = {}
    settings = [(what, t) for what in ("training", *jobs) for t in args.threads]
    for round_ in range(args.rounds):
        for what, threads in settings if round_ % 2 == 0 else settings[::-1]:
            value = (
                step_s_in_fresh_process(threads, args.steps)
                if what == "training"
                else serve_tok_s(jobs[what], threads)
            )
            runs.setdefault(f"{what}, {threads} thread(s)", []).append(value)
            print(f"round {round_}: {what}, {threads} thread(s): {value:.3f}", flush=True)  # noqa: T201
    print("| stage, threads | figure | median | min-max | n |\n|---|---|--:|--:|--:|")  # noqa: T201
    for name, values in runs.items():
        unit = "s per training step" if name.startswith("training") else "generated tok/s"
        row = f"| {name} | {unit} | {statistics.median(values):.3f} | "
        print(f"{row}{min(values):.3f}-{max(values):.3f} | {len(values)} |")  # noqa: T201
    print(f"load average at the end: {os.getloadavg()}, {os.environ.get('OMP_WAIT_POLICY')=}")  # noqa: T201


if __name__ == "__main__":
    main()
