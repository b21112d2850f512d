"""Throughput, memory and cost: the teacher pipeline (two inferences) against the student (one),
each system served by its configured engine in a fresh process of its own, so its memory figures
are its own.

    python -m product_descgen.evaluation.speed JOB.json RESULT.json   # what the node runs

Protocol (the same for both systems): the model, tokenizer and engine are built at load; a
warm-up serves products outside the measured sample; the measured products are then served
once, each request's clock starting before its prefill. Memory comes from the kernel's counters
of the worker process: ``loaded_mb`` is resident memory after loading less the process before
loading (Python and libraries); ``model_peak_mb`` the peak while serving less that baseline
(weights plus runtime: KV cache, activations); ``process_peak_mb`` the whole process's peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from product_descgen.evaluation.inference import student_requests
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.llm.types import GenerationSettings
from product_descgen.prompting import PromptSet
from product_descgen.runtime import ENV_VAR as THREADS_ENV
from product_descgen.runtime import LOG_FORMAT, threads
from product_descgen.step_runner import step_requests
from product_descgen.teacher.generate import draft_variables, refine_variables

if TYPE_CHECKING:
    from product_descgen.quality.checks import GateParams

logger = logging.getLogger(__name__)

MB = 1024 * 1024
DELIVERED = ("product_ids", "texts", "finish")  # a result's texts, not figures of the run


class SpeedJob(BaseModel):
    """Everything a worker needs to serve one system on a sample of products."""

    model_config = ConfigDict(extra="forbid")

    system: Literal["teacher", "student"]
    connection: Connection
    model_dir: str | None = None  # none: a server serves the model
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
    warmup_items: list[dict[str, Any]] = []  # served before the clock starts, not measured


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024


def reset_peak() -> None:
    """Return freed heap to the OS, then restart the peak counter at the current RSS."""
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def gpu_memory_mb(reset: bool = False) -> dict[str, float]:
    """This process's GPU memory: the CUDA allocator's peak allocated and reserved since the
    last reset (torch), and what the driver says the process holds now (NVML; the CUDA context
    included). Empty when the process has not used CUDA; ``reset`` restarts the peaks."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {}
    if reset:
        torch.cuda.reset_peak_memory_stats()
        return {}
    out = {
        "gpu_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
        "gpu_peak_reserved_mb": torch.cuda.max_memory_reserved() / 2**20,
    }
    with contextlib.suppress(Exception):  # no NVML library: the allocator's figures stand
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        used = {p.pid: p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)}
        if used.get(os.getpid()):
            out["gpu_process_nvml_mb"] = used[os.getpid()] / 2**20
    return out


Served = dict[str, Any]  # latency, per-step tokens, the delivered texts


def _teacher(backend: Any, job: SpeedJob, items: list[dict[str, Any]]) -> Served:
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

    drafts = step("draft", items, job.draft or GenerationSettings())
    drafted = [{**it, "draft": drafts[it["product_id"]].text} for it in items]
    refined = step(
        "refine", [it for it in drafted if it["draft"]], job.refine or GenerationSettings()
    )
    out: Served = {"latency": [], "texts": [], "finish": [], "steps": {"draft": [], "refine": []}}
    for item in items:
        parts = {"draft": drafts[item["product_id"]], "refine": refined.get(item["product_id"])}
        out["latency"].append(sum(p.latency_s for p in parts.values() if p))
        for name, part in parts.items():
            out["steps"][name].append(part)
        final = parts["refine"]
        out["texts"].append(final.text if final else None)
        out["finish"].append(final.finish_reason if final else None)
    return out


def _student(backend: Any, job: SpeedJob, items: list[dict[str, Any]]) -> Served:
    requests = student_requests(pd.DataFrame(items), job.template or "")
    by_key = {r.key: r for batch in backend.generate(requests) for r in batch}
    results = [by_key[r.key] for r in requests]
    return {
        "latency": [r.latency_s for r in results],
        "texts": [r.text for r in results],
        "finish": [r.finish_reason for r in results],
        "steps": {"describe": results},
    }


def _tokens(served: Served) -> dict[str, float]:
    """Prompt and generated tokens per description, per step and in all."""
    out: dict[str, float] = {}
    n = len(served["latency"])
    for name, results in served["steps"].items():
        out[f"{name}_prompt_tokens"] = sum(r.prompt_tokens for r in results if r) / n
        out[f"{name}_generated_tokens"] = sum(r.completion_tokens for r in results if r) / n
    last = list(served["steps"].values())[-1]
    out["final_text_tokens"] = sum(r.completion_tokens for r in last if r) / n
    return out


def check_catalogue(product_ids: list[Any], catalogue: pd.DataFrame) -> None:
    """Fails, naming them, when products to be gated are not in the gate's catalogue (checked
    before the measurement too: a speed test runs for minutes)."""
    unknown = {str(p) for p in product_ids} - set(catalogue["product_id"].astype(str))
    if unknown:
        raise ValueError(
            f"{len(unknown)} measured products are not in the catalogue the gate checks against "
            f"(e.g. {sorted(unknown)[:3]}): re-run data_prep, or measure products it holds"
        )


def gate_outputs(
    results: list[dict[str, Any]],
    catalogue: pd.DataFrame,
    gate: GateParams,
    embedding_model: str | None,
) -> pd.DataFrame:
    """Every text ``results`` delivered (:func:`measure`'s results), through the quality gate
    as the teacher's gate and describe check theirs (:func:`product_descgen.quality.gate.
    gate_problems`: the off-product check and the lexicon against ``catalogue``, which holds
    the measured products); one row per result and product. Each result gets its
    ``gate_pass_rate``."""
    from product_descgen.quality.gate import OutputFields, gate_problems

    check_catalogue([p for r in results for p in r["product_ids"]], catalogue)
    inputs = catalogue.set_index(catalogue["product_id"].astype(str))["input_text"]
    rows = [
        {"result": i, "round": r.get("round"), "system": r["system"], "serving": r["serving"],
         "product_id": pid, "input_text": inputs[str(pid)], "text": text, "finish_reason": end}
        for i, r in enumerate(results)
        for pid, text, end in zip(r["product_ids"], r["texts"], r["finish"], strict=True)
    ]  # fmt: skip
    found = gate_problems(rows, OutputFields(), catalogue, gate, embedding_model)
    frame = pd.DataFrame(rows).drop(columns="input_text")
    frame["passed"] = [not problems for problems in found]
    frame["reasons"] = [",".join(dict.fromkeys(code for code, _ in p)) for p in found]
    for i, result in enumerate(results):
        result["gate_pass_rate"] = float(frame.loc[frame["result"] == i, "passed"].mean())
    return frame


def _import_libraries(job: SpeedJob) -> None:
    """Import what loading needs before the baseline is taken: library code is the process's
    footprint, not the model's."""
    import importlib

    if job.connection.backend == "openvino":
        # the engine, and the tokenizer's import chain (transformers' tokenizers import torch)
        for module in ("openvino", "openvino_genai", "transformers.models.auto.tokenization_auto"):
            importlib.import_module(module)
        return
    if job.connection.backend != "transformers":
        return
    import transformers
    from transformers import AutoConfig

    for module in ("torch", "peft", "transformers.generation.utils"):
        importlib.import_module(module)
    architecture = AutoConfig.from_pretrained(job.model_dir).architectures[0]
    getattr(transformers, architecture)  # its modelling module, imported lazily otherwise
    if job.connection.quantization != "none":
        importlib.import_module("bitsandbytes")


def measure(job: SpeedJob) -> dict[str, Any]:
    """Serve ``job.items`` with the system and report speed and memory (in this process)."""
    load_average = os.getloadavg()[0]
    _import_libraries(job)
    reset_peak()
    base = rss_mb()
    started = time.perf_counter()
    settings = job.generation or job.draft or GenerationSettings()
    backend = make_backend(job.connection, job.model_dir, settings, adapter=job.adapter)
    load_s = time.perf_counter() - started
    run = _teacher if job.system == "teacher" else _student
    if job.warmup_items:
        run(backend, job, job.warmup_items)
    reset_peak()
    gpu_memory_mb(reset=True)
    loaded = rss_mb()
    started = time.perf_counter()
    served = run(backend, job, job.items)
    seconds = time.perf_counter() - started
    peak = peak_mb()
    n = len(job.items)
    tokens = _tokens(served)
    generated = sum(v for k, v in tokens.items() if k.endswith("_generated_tokens")) * n
    return {
        "system": job.system,
        "serving": job.connection.serving,
        "backend": job.connection.backend,
        "batch_size": job.connection.batch_size,
        "threads": threads(),
        "load_average": load_average,
        "descriptions": n,
        "warmup_descriptions": len(job.warmup_items),
        "inferences_per_description": len(served["steps"]),
        "seconds": seconds,
        "load_seconds": load_s,
        "descriptions_per_s": n / seconds,
        "generated_tokens": int(generated),
        "generated_tokens_per_s": generated / seconds,
        "seconds_per_final_token": seconds / (tokens["final_text_tokens"] * n)
        if tokens["final_text_tokens"]
        else float("nan"),
        **tokens,
        "latency_p50_s": float(np.percentile(served["latency"], 50)),
        "latency_p95_s": float(np.percentile(served["latency"], 95)),
        "rss_before_load_mb": base,
        "loaded_mb": loaded - base,
        "model_peak_mb": peak - base,
        "process_peak_mb": peak,
        **gpu_memory_mb(),
        # DELIVERED: what was served, for the quality gate (gate_outputs)
        "product_ids": [item["product_id"] for item in job.items],
        "texts": served["texts"],
        "finish": served["finish"],
    }


def run_isolated(job: SpeedJob, timeout_s: int = 3600) -> dict[str, Any]:
    """``measure`` in a fresh Python process (clean memory figures); its result as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        job_path, out_path = Path(tmp, "job.json"), Path(tmp, "result.json")
        job_path.write_text(job.model_dump_json())
        env = {**os.environ, THREADS_ENV: str(threads())}
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
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    job = SpeedJob.model_validate_json(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(measure(job), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


def run_pairs(
    jobs: tuple[SpeedJob, SpeedJob],
    pairs: int,
    timeout_s: int,
    check_first: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """``pairs`` rounds of both systems, each in a fresh process, the order alternating
    (teacher first in odd rounds); every result carries its round. ``check_first``: called
    with the first round's results, so what cannot be used fails before the other rounds."""
    results = []
    for round_ in range(pairs):
        order = jobs if round_ % 2 == 0 else jobs[::-1]
        for job in order:
            results.append({**run_isolated(job, timeout_s), "round": round_})
        if round_ == 0 and check_first is not None:
            check_first(results)
    return results


def round_figures(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per system and round: every figure of :func:`measure` (the texts left out)."""
    return pd.DataFrame([{k: v for k, v in r.items() if k not in DELIVERED} for r in results])


def summarise_rounds(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per system: the median of every numeric figure over the rounds, with the
    minimum and maximum of the headline ones."""
    frame = round_figures(results)
    rows = []
    for system, part in frame.groupby("system", sort=False):
        numeric = part.select_dtypes("number").drop(columns=["round"])
        row = {col: statistics.median(numeric[col]) for col in numeric.columns}
        for col in (
            "descriptions_per_s",
            "generated_tokens_per_s",
            "model_peak_mb",
            "load_average",
        ):
            row[f"{col}_min"], row[f"{col}_max"] = float(part[col].min()), float(part[col].max())
        first = part.iloc[0]
        rows.append({"system": system, "serving": first["serving"], "backend": first["backend"],
                     "rounds": len(part), **row})  # fmt: skip
    return pd.DataFrame(rows)


def difference_band(first: float | None, second: float | None, n: int) -> float | None:
    """The noise band of a difference of two pass rates, each on the same ``n`` products: two
    standard errors (a difference within it is no evidence of one), Agresti and Caffo's
    (a pass and a fail added to each side), so rates of 0 or 1 on a few products get a band,
    not ±0."""
    if first is None or second is None or not n:
        return None
    adjusted = [(rate * n + 1) / (n + 2) for rate in (first, second)]
    return 2 * math.sqrt(sum(p * (1 - p) for p in adjusted) / (n + 2))


def round_ratios(results: list[dict[str, Any]]) -> list[float]:
    """The student's descriptions per second over the teacher pipeline's, round by round."""
    frame = pd.DataFrame(results).pivot(
        index="round", columns="system", values="descriptions_per_s"
    )
    return (frame["student"] / frame["teacher"]).tolist()
