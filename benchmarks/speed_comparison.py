"""Teacher pipeline against the trained student, by the evaluation's own protocol, on products
neither has seen: the Flipkart sample in ../shared, prepared by data_prep's nodes in memory.

    .venv/bin/python benchmarks/speed_comparison.py [--products 64] [--pairs 3]
    .venv/bin/python benchmarks/speed_comparison.py --old-engine-src /tmp/old/src

Both systems are served as the catalog serves them (the engine, weights and batch size of
``teacher_llm`` and ``student_llm``), built by ``evaluation.nodes.speed_jobs`` exactly as the
``measure_speed`` node builds them, after ``make run`` has trained and exported a student.
Each round runs both systems, each in a fresh process (warm-up, then the timed products), the
order alternating; the table gives medians and min-max over the rounds.

``--old-engine-src``: the ``src`` folder of a checkout of 2315053 (the hand-written engine this
project served with before, ``git worktree add /tmp/old 2315053``); its student (nf4 base +
adapter, 16 rows in flight, its own speed worker) is then served on the same products, alternated
with the new student, for the aggregate-throughput comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_setup import ROOT, gate_texts, load_speed_jobs, newest_student_adapter  # noqa: E402

from product_descgen.evaluation import cost, speed  # noqa: E402
from product_descgen.pipelines.data_prep import nodes as prep  # noqa: E402
from product_descgen.prep.config import DataPrepParams  # noqa: E402
from product_descgen.project_config import load_project_params  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "flipkart_products_2000.jsonl"


def flipkart_items(n: int, seed: int = 0, path: Path = SHARED) -> list[dict]:
    """``n`` products of the Flipkart sample as model inputs (data_prep's nodes, its env)."""
    params = DataPrepParams.model_validate(load_project_params("flipkart")["data_prep"])
    raw = pd.read_json(path, lines=True)
    ingested, _ = prep.ingest_catalogue(raw, params)
    cleaned, _ = prep.clean_catalogue(ingested, params)
    inputs = prep.build_model_inputs(cleaned, params)
    sample = inputs.sample(n=n, random_state=seed)
    return sample[["product_id", "input_text", "audience"]].to_dict(orient="records")


# Run with the old checkout's src first on the path: its student served as its speed test
# served it (its backend, its _student step), after a warm-up on the same products as the new.
OLD_ENGINE_WORKER = """
import json, sys, time
from product_descgen.evaluation import speed
from product_descgen.llm.backends import make_backend
job = speed.SpeedJob.model_validate(json.load(open(sys.argv[1])))
warmup = json.load(open(sys.argv[2]))
backend = make_backend(job.connection, job.model_dir, job.generation, adapter=job.adapter)
speed._student(backend, job.model_copy(update={"items": warmup}))
started = time.perf_counter()
latency, tokens, _, _ = speed._student(backend, job)
seconds = time.perf_counter() - started
json.dump({"generated_tokens": int(sum(tokens)), "seconds": seconds,
           "generated_tokens_per_s": sum(tokens) / seconds}, open(sys.argv[3], "w"))
"""


def old_engine_job(job: speed.SpeedJob, adapter: str, base_dir: str) -> dict:
    """The student job in the old engine's format: nf4 base + adapter in float32, 16 rows in
    flight (its catalog's serving), one thread."""
    return {
        "system": "student",
        "connection": {"backend": "transformers", "dtype": "float32", "quantization": "nf4",
                       "batch_size": 16, "threads": 1},  # fmt: skip
        "model_dir": base_dir, "adapter": adapter, "items": job.items,
        "template": job.template, "generation": job.generation.model_dump(),
    }  # fmt: skip


def run_old_engine(job: dict, warmup: list[dict], old_src: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, name) for name in ("job.json", "warmup.json", "out.json")]
        paths[0].write_text(json.dumps(job))
        paths[1].write_text(json.dumps(warmup))
        env = {**os.environ, "PYTHONPATH": str(old_src), "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-c", OLD_ENGINE_WORKER, *map(str, paths)]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=3600)
        return json.loads(paths[2].read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--old-engine-src", type=Path)
    parser.add_argument("--catalogue", type=Path, default=SHARED, help="Flipkart JSON Lines")
    args = parser.parse_args()
    evaluation, teacher_job, student_job = load_speed_jobs()
    items = flipkart_items(args.products + args.warmup, path=args.catalogue)
    update = {"items": items[args.warmup :], "warmup_items": items[: args.warmup]}
    teacher_job = teacher_job.model_copy(update=update)
    student_job = student_job.model_copy(update=update)
    rounds = speed.run_pairs((teacher_job, student_job), args.pairs, timeout_s=7200)
    gate_texts(rounds, items)
    table = speed.summarise_rounds(rounds)
    by_system = {row["system"]: row for row in table.to_dict(orient="records")}
    p = evaluation.speed
    machines = [m.model_dump() for m in p.machines]
    summary = cost.compare(cost.speed_table(by_system["teacher"], by_system["student"], machines))
    columns = [
        "system", "serving", "rounds", "descriptions", "descriptions_per_s",
        "descriptions_per_s_min", "descriptions_per_s_max", "generated_tokens_per_s",
        "generated_tokens_per_s_min", "generated_tokens_per_s_max", "model_peak_mb",
        "model_peak_mb_min", "model_peak_mb_max", "gate_pass_rate", "load_average_min",
        "load_average_max",
    ]  # fmt: skip
    tokens = [c for c in table.columns if c.endswith(("_prompt_tokens", "_generated_tokens"))]
    print(table[columns].to_markdown(index=False, floatfmt=".3g"))  # noqa: T201
    print(table[["system", *tokens, "final_text_tokens"]].to_markdown(index=False))  # noqa: T201
    rates = summary["teacher_gate_pass_rate"], summary["student_gate_pass_rate"]
    summary |= {
        "throughput_ratio_rounds": speed.round_ratios(rounds),
        "gate_noise_band": speed.difference_band(*rates, len(teacher_job.items)),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "headline"}, indent=1))  # noqa: T201
    if args.old_engine_src:
        from product_descgen.export.student import base_model_dir

        adapter = student_job.adapter or newest_student_adapter()
        old = old_engine_job(student_job, adapter, str(base_model_dir(adapter)))
        pairs = []
        for round_ in range(args.pairs):
            runs = {}
            order = ("new", "old") if round_ % 2 == 0 else ("old", "new")
            for which in order:
                runs[which] = (
                    speed.run_isolated(student_job, 3600)
                    if which == "new"
                    else run_old_engine(old, student_job.warmup_items, args.old_engine_src)
                )
            pairs.append({k: (v["generated_tokens_per_s"], v["generated_tokens"])
                          for k, v in runs.items()})  # fmt: skip
        ratios = [p["new"][0] / p["old"][0] for p in pairs]
        print(json.dumps({"student (tok/s, tokens), new vs old engine": pairs,  # noqa: T201
                          "ratio median": statistics.median(ratios),
                          "ratio min-max": [min(ratios), max(ratios)]}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
