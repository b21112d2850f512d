"""Throughput, memory and cost: the teacher pipeline (two inferences) against the student (one),
each system measured in its own process so its memory figures are its own.

    python -m product_descgen.evaluation.speed JOB.json RESULT.json   # what the node runs

Memory, from the kernel's counters of the worker process:
* ``rss_before_load_mb``: the process before the model is loaded (Python, torch, tokenizer);
* ``loaded_mb``: resident memory after loading, less that baseline (weights as served);
* ``model_peak_mb``: peak resident memory while generating, less the baseline (weights plus
  runtime: KV cache, activations, logits). The load's own transient peak is excluded by
  resetting the high-water mark (``/proc/self/clear_refs``) once the model is in place;
* ``process_peak_mb``: the whole process's peak while generating.

Workers return large freed blocks to the OS (``release_freed_memory``), so the peaks count
live memory, not what glibc's allocator chose to keep; serve with
``MALLOC_MMAP_THRESHOLD_=131072`` to get the same footprint.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from product_descgen.evaluation.inference import student_requests
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.llm.prompts import PromptSet
from product_descgen.llm.types import GenerationSettings
from product_descgen.teacher.generate import draft_variables, refine_variables, step_requests

logger = logging.getLogger(__name__)

MB = 1024 * 1024


class SpeedJob(BaseModel):
    """Everything a worker needs to serve one system on a sample of products."""

    model_config = ConfigDict(extra="forbid")

    system: Literal["teacher", "student"]
    connection: Connection
    model_dir: str
    adapter: str | None = None
    items: list[dict[str, Any]]  # product_id, input_text, audience
    # teacher: the two-step prompt file and its settings
    prompts: dict[str, Any] | None = None
    rules: dict[str, Any] | None = None
    draft: GenerationSettings | None = None
    refine: GenerationSettings | None = None
    # student: its training prompt and settings
    template: str | None = None
    generation: GenerationSettings | None = None
    return_texts: bool = False  # add the final texts to the result (benchmarks compare them)
    mmap_threshold: int | None = 128 * 1024  # glibc's, bytes (release_freed_memory)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024


def release_freed_memory(threshold: int | None = 128 * 1024) -> None:
    """Have glibc hand large freed blocks back to the OS: a fixed mmap threshold of
    ``threshold`` bytes, as ``MALLOC_MMAP_THRESHOLD_`` does (``None``: glibc's default). By
    default glibc raises the threshold after the first large frees, so freed activations stay
    resident: 150-500 MB on the demo student, which the peak would then count as the model's.
    The price is speed: every large block is then a fresh mapping, paged in as it is written
    (``benchmarks/allocator_threshold.py`` measures both). Both systems' workers run with the
    same setting."""
    if threshold is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to set
        ctypes.CDLL("libc.so.6").mallopt(-3, threshold)  # -3: M_MMAP_THRESHOLD


def reset_peak() -> None:
    """Return freed heap to the OS, then restart the peak counter at the current RSS."""
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def _teacher(backend: Any, job: SpeedJob) -> tuple[list[float], list[int], int, list]:
    prompts = PromptSet.model_validate(job.prompts).require("draft", "refine")
    rules, model = job.rules or {}, job.model_dir

    def step(name: str, items: list[dict[str, Any]], settings: GenerationSettings) -> dict:
        settings = prompts.with_stop(settings)
        variables = draft_variables if name == "draft" else refine_variables
        requests = step_requests(
            items, prompts, name, model, settings, lambda it: variables(it, rules)
        )
        backend.settings = settings
        by_key = {r.key: r for batch in backend.generate(requests) for r in batch}
        return {item["product_id"]: by_key[r.key] for item, r in zip(items, requests, strict=True)}

    drafts = step("draft", job.items, job.draft or GenerationSettings())
    drafted = [{**it, "draft": drafts[it["product_id"]].text} for it in job.items]
    refined = step(
        "refine", [it for it in drafted if it["draft"]], job.refine or GenerationSettings()
    )
    latency, tokens, texts = [], [], []
    for item in job.items:
        parts = [drafts[item["product_id"]], refined.get(item["product_id"])]
        latency.append(sum(p.latency_s for p in parts if p))
        tokens.append(sum(p.completion_tokens for p in parts if p))
        texts.append(parts[1].text if parts[1] else None)
    return latency, tokens, 2, texts


def _student(backend: Any, job: SpeedJob) -> tuple[list[float], list[int], int, list]:
    requests = student_requests(pd.DataFrame(job.items), job.template or "")
    by_key = {r.key: r for batch in backend.generate(requests) for r in batch}
    results = [by_key[r.key] for r in requests]
    latency = [r.latency_s for r in results]
    return latency, [r.completion_tokens for r in results], 1, [r.text for r in results]


def _import_libraries(job: SpeedJob) -> None:
    """Import what loading needs before the baseline is taken: library code is the process's
    footprint, not the model's."""
    import importlib

    if job.connection.backend != "transformers":
        return
    import transformers
    from transformers import AutoConfig

    for module in ("torch", "peft", "transformers.generation.utils"):
        importlib.import_module(module)
    architecture = AutoConfig.from_pretrained(job.model_dir).architectures[0]
    getattr(transformers, architecture)  # its modelling module, imported lazily otherwise
    if job.connection.quantization == "int8":
        importlib.import_module("torch.ao.nn.quantized.dynamic")


def measure(job: SpeedJob) -> dict[str, Any]:
    """Serve ``job.items`` with the system and report speed and memory (in this process)."""
    release_freed_memory(job.mmap_threshold)
    _import_libraries(job)
    reset_peak()
    base = rss_mb()
    started = time.perf_counter()
    settings = job.generation or job.draft or GenerationSettings()
    backend = make_backend(job.connection, job.model_dir, settings, adapter=job.adapter)
    load_s = time.perf_counter() - started
    load_peak = peak_mb()
    reset_peak()
    loaded = rss_mb()
    started = time.perf_counter()
    run = _teacher if job.system == "teacher" else _student
    latency, tokens, inferences, texts = run(backend, job)
    seconds = time.perf_counter() - started
    peak = peak_mb()
    n = len(job.items)
    return {
        "system": job.system,
        "serving": job.connection.quantization
        if job.connection.backend == "transformers"
        else f"server {job.connection.model}",
        "backend": job.connection.backend,
        "batch_size": job.connection.batch_size,
        "threads": job.connection.threads,
        "descriptions": n,
        "inferences_per_description": inferences,
        "seconds": seconds,
        "load_seconds": load_s,
        "descriptions_per_s": n / seconds,
        "generated_tokens": int(sum(tokens)),
        "generated_tokens_per_s": sum(tokens) / seconds,
        "latency_p50_s": float(np.percentile(latency, 50)),
        "latency_p95_s": float(np.percentile(latency, 95)),
        "rss_before_load_mb": base,
        "loaded_mb": loaded - base,
        "model_peak_mb": peak - base,
        "process_peak_mb": peak,
        "load_peak_mb": load_peak - base,
        "mmap_threshold": job.mmap_threshold,
        **({"texts": texts} if job.return_texts else {}),
    }


def run_isolated(job: SpeedJob, timeout_s: int = 3600) -> dict[str, Any]:
    """``measure`` in a fresh Python process (clean memory figures); its result as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        job_path, out_path = Path(tmp, "job.json"), Path(tmp, "result.json")
        job_path.write_text(job.model_dump_json())
        env = dict(os.environ)
        if job.connection.threads:
            env["OMP_NUM_THREADS"] = str(job.connection.threads)
        logger.info("Speed test: %s on %d products (own process)", job.system, len(job.items))
        command = [sys.executable, "-m", __name__, str(job_path), str(out_path)]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not out_path.is_file():
            raise RuntimeError(
                f"speed test of the {job.system} failed (exit {done.returncode}):\n"
                + done.stderr[-3000:]
            )
        return json.loads(out_path.read_text())


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    job = SpeedJob.model_validate_json(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(measure(job), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
