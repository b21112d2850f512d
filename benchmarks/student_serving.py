"""How to serve the student on this CPU: speed, memory and fidelity of each weight format.

    .venv/bin/python benchmarks/student_serving.py     # after a finetune run; prints a table

Each option serves the trained student (latest ``student_adapter`` on the configured base) to
the same test products with the evaluation's generation settings, each in its own process
(``product_descgen.evaluation.speed``). Fidelity: mean embedding cosine (all-MiniLM-L6-v2)
between an option's description and float32's for the same product (1.0 = the same text).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import pandas as pd  # noqa: E402
from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402

from product_descgen.evaluation import metrics  # noqa: E402
from product_descgen.evaluation.config import EvaluationParams  # noqa: E402
from product_descgen.evaluation.speed import SpeedJob, run_isolated  # noqa: E402
from product_descgen.models import ModelsParams, resolve_model_dir  # noqa: E402
from product_descgen.training.config import FinetuneParams  # noqa: E402

OPTIONS = ["none", "nf4", "int8"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT) as session:
        catalog = session.load_context().catalog
        params = catalog.load("parameters")
        adapter = catalog.load("student_adapter")
        connection = catalog.load("student_llm")
        test = catalog.load("test_examples")
    models = ModelsParams.model_validate(params["models"])
    evaluation = EvaluationParams.model_validate(params["evaluation"])
    template = FinetuneParams.model_validate(params["finetune"]).prompt_template
    items = test.head(args.sample)[["product_id", "input_text", "audience"]]
    rows, texts = [], {}
    for option in OPTIONS:
        job = SpeedJob(
            system="student", model_dir=resolve_model_dir(models.student, models.cache_dir),
            connection=connection.model_copy(update={"quantization": option,
                                                     "threads": args.threads}),
            adapter=adapter, items=items.to_dict(orient="records"), template=template,
            generation=evaluation.student_generation, return_texts=True,
        )  # fmt: skip
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
