"""What glibc's mmap threshold does to the speed test: speed and peak memory of each system.

    .venv/bin/python benchmarks/allocator_threshold.py       # after a demo run; prints a table

The speed test's workers fix glibc's mmap threshold (``evaluation.speed.release_freed_memory``)
so that freed blocks go back to the OS and the peak counts live memory. This serves the
evaluation's own speed-test jobs (same products, same serving) with that threshold and with
others, each system in its own process, one after the other, thresholds interleaved so both
systems see the same machine state per setting.
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

from product_descgen.evaluation.config import EvaluationParams  # noqa: E402
from product_descgen.evaluation.speed import run_isolated  # noqa: E402
from product_descgen.models import ModelsParams  # noqa: E402
from product_descgen.pipelines.evaluation.nodes import speed_jobs  # noqa: E402
from product_descgen.teacher.config import TeacherParams  # noqa: E402
from product_descgen.training.config import FinetuneParams  # noqa: E402


def threshold(text: str) -> int | None:
    """Bytes, with a K or M suffix; ``default``: glibc's own dynamic threshold."""
    if text == "default":
        return None
    units = {"K": 1024, "M": 1024 * 1024}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--thresholds", nargs="+", default=["128K", "16M", "default"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT) as session:
        catalog = session.load_context().catalog
        params = catalog.load("parameters")
        inputs = [catalog.load(name) for name in (
            "test_examples", "student_adapter", "teacher_prompts", "teacher_llm", "student_llm",
        )]  # fmt: skip
    jobs = speed_jobs(
        *inputs,
        ModelsParams.model_validate(params["models"]),
        TeacherParams.model_validate(params["teacher_generation"]),
        FinetuneParams.model_validate(params["finetune"]),
        EvaluationParams.model_validate(params["evaluation"]),
    )
    rows = []
    for setting in args.thresholds:
        results = {}
        for job in jobs:
            job = job.model_copy(update={"mmap_threshold": threshold(setting)})
            results[job.system] = result = run_isolated(job)
            rows.append({"mmap threshold": setting, **{k: result[k] for k in (
                "system", "seconds", "descriptions_per_s", "generated_tokens", "model_peak_mb",
                "process_peak_mb",
            )}})  # fmt: skip
        teacher, student = results["teacher"], results["student"]
        rows.append({
            "mmap threshold": setting, "system": "student / teacher",
            "descriptions_per_s": student["descriptions_per_s"] / teacher["descriptions_per_s"],
            "model_peak_mb": 1 - student["model_peak_mb"] / teacher["model_peak_mb"],
        })  # fmt: skip
    table = pd.DataFrame(rows).round(3)
    print(table.to_markdown(index=False))  # noqa: T201 - the benchmark's report


if __name__ == "__main__":
    main()
