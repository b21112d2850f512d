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

import pandas as pd
from speed_setup import load_speed_jobs

from product_descgen.evaluation.speed import run_isolated


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
    _, *jobs = load_speed_jobs()
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
