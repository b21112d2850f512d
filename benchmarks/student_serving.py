"""How to serve the student on this CPU: speed, memory and fidelity of each weight format.

    .venv/bin/python benchmarks/student_serving.py     # after a finetune run; prints a table

Each option serves the trained student (latest ``student_adapter`` on the configured base) to
the speed test's own sample of test products (``--sample`` of them) with the evaluation's
generation settings, each in its own process (``product_descgen.evaluation.speed``).
Fidelity: mean embedding cosine (all-MiniLM-L6-v2) between an option's description and
float32's for the same product (1.0 = the same text).
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd
from speed_setup import load_speed_jobs

from product_descgen.evaluation import metrics
from product_descgen.evaluation.speed import run_isolated

OPTIONS = ["none", "nf4", "int8"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    evaluation, _, student = load_speed_jobs(args.sample)
    items = student.items
    rows, texts = [], {}
    for option in OPTIONS:
        job = student.model_copy(update={
            "connection": student.connection.model_copy(
                update={"quantization": option, "threads": args.threads}),
            "return_texts": True,
        })  # fmt: skip
        result = run_isolated(job)
        texts[option] = [t or "" for t in result.pop("texts")]
        rows.append(result)
    embedder = metrics.load_embedder(evaluation.metrics)
    for row, option in zip(rows, OPTIONS, strict=True):
        row["fidelity_vs_float32"] = sum(
            metrics.embedding_similarity(texts[option], texts["none"], embedder)
        ) / len(items)
    table = pd.DataFrame(rows)[
        ["serving", "descriptions", "seconds", "descriptions_per_s", "generated_tokens_per_s",
         "loaded_mb", "model_peak_mb", "fidelity_vs_float32"]
    ].round(3)  # fmt: skip
    print(table.to_markdown(index=False))  # noqa: T201 - the benchmark's report


if __name__ == "__main__":
    main()
