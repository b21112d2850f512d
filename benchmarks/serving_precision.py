"""Both systems of the speed comparison served with ``precision: f32`` (float32 compute and KV
cache, the setting under which the engine's text is compared with the transformers reference)
and with ``precision: auto`` (the CPU plugin's choice, the default), after ``make run``.

    .venv/bin/python benchmarks/serving_precision.py [--products 64] [--rounds 3]

Each round serves the teacher pipeline and the student at both precisions, each in a fresh
process (warm-up, then the timed products), the order reversed every other round. Reported per
system and precision: medians and min-max over the rounds of descriptions/s, generated tokens/s
and peak model memory; the quality gate's pass rate; whether each system's greedy texts were the
same in every round; and the student-to-teacher throughput ratio at each precision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_comparison import flipkart_items  # noqa: E402
from speed_setup import gate_texts, load_speed_jobs  # noqa: E402

from product_descgen.evaluation import speed  # noqa: E402

PRECISIONS = ("f32", "auto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _, teacher_job, student_job = load_speed_jobs()
    items = flipkart_items(args.products + args.warmup)
    update = {"items": items[args.warmup :], "warmup_items": items[: args.warmup]}
    jobs = []
    for job in (teacher_job, student_job):
        for precision in PRECISIONS:
            connection = job.connection.model_copy(update={"precision": precision})
            change = {**update, "connection": connection}
            jobs.append(job.model_copy(update=change))
    results = []
    for round_ in range(args.rounds):
        for job in jobs if round_ % 2 == 0 else jobs[::-1]:
            result = speed.run_isolated(job, 7200)
            key = f"{job.system} {job.connection.precision}"
            results.append({**result, "system": key, "round": round_})
    gate_texts(results, items)
    texts: dict[str, list] = {}
    for r in results:
        texts.setdefault(r["system"], []).append(r.pop("texts"))
    same = {system: all(t == runs[0] for t in runs) for system, runs in texts.items()}
    table = speed.summarise_rounds(results)
    columns = [
        "system", "descriptions_per_s", "descriptions_per_s_min", "descriptions_per_s_max",
        "generated_tokens_per_s", "generated_tokens_per_s_min", "generated_tokens_per_s_max",
        "model_peak_mb", "model_peak_mb_min", "model_peak_mb_max", "gate_pass_rate",
        "final_text_tokens", "load_average_min", "load_average_max",
    ]  # fmt: skip
    print(table[columns].to_markdown(index=False, floatfmt=".3g"))  # noqa: T201
    rate = {(r["round"], r["system"]): r["descriptions_per_s"] for r in results}
    ratios = {}
    for precision in PRECISIONS:
        per_round = [
            rate[n, f"student {precision}"] / rate[n, f"teacher {precision}"]
            for n in range(args.rounds)
        ]
        ratios[precision] = {"median": statistics.median(per_round), "rounds": per_round}
    print(json.dumps({"student / teacher descriptions per second": ratios,  # noqa: T201
                      "texts identical in every round": same}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
