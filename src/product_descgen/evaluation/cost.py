"""Cost per description and the side-by-side ratios, next to the reference case's headline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

# What the reference case reported (Llama-2-13B-chat teacher, two inferences, served in 8-bit,
# against a QLoRA Llama-2-7B-chat student, one inference, served in 4-bit).
REFERENCE = {"throughput_ratio": 4.0, "memory_reduction": 0.75, "cost_reduction": 0.80}


def cost_per_1000(descriptions_per_s: float, price_per_hour: float) -> float:
    """Machine time for 1,000 descriptions at the measured rate, priced by the hour."""
    if descriptions_per_s <= 0:
        raise ValueError("descriptions_per_s must be positive")
    return price_per_hour / 3600 / descriptions_per_s * 1000


def smallest_machine(
    peak_mb: float, machines: Sequence[dict[str, Any]], gpu_peak_mb: float | None = None
) -> dict[str, Any]:
    """The cheapest machine whose memory holds a serving process that peaked at ``peak_mb``
    (MiB) and, for a process that used a GPU, whose ``gpu_memory_gb`` holds ``gpu_peak_mb``.
    A machine without ``memory_gb`` holds any process; one without ``gpu_memory_gb`` has no
    GPU."""

    def holds(machine: dict[str, Any]) -> bool:
        ram = machine.get("memory_gb") is None or machine["memory_gb"] * 1024 >= peak_mb
        gpu = gpu_peak_mb is None or (machine.get("gpu_memory_gb") or 0) * 1024 >= gpu_peak_mb
        return ram and gpu

    fits = [m for m in machines if holds(m)]
    if not fits:
        gpu = f" and {gpu_peak_mb:.0f} MiB of GPU memory" if gpu_peak_mb is not None else ""
        raise ValueError(
            f"no machine in evaluation.speed.machines holds a process of {peak_mb:.0f} MiB"
            f"{gpu}: add one"
        )
    return min(fits, key=lambda m: m["price_per_hour"])


def machine_for(result: dict[str, Any], machines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`smallest_machine` for a measured process (its GPU peak NaN where it used none)."""
    gpu_peak = result.get("gpu_peak_reserved_mb")
    gpu_peak = None if gpu_peak is None or pd.isna(gpu_peak) else float(gpu_peak)
    return smallest_machine(result["process_peak_mb"], machines, gpu_peak)


def check_machines(results: Sequence[dict[str, Any]], machines: Sequence[dict[str, Any]]) -> None:
    """Fails unless each measured process fits some machine (after the speed test's first
    round, not after all of them)."""
    for result in results:
        machine_for(result, machines)


def speed_table(
    teacher: dict[str, Any], student: dict[str, Any], machines: Sequence[dict[str, Any]]
) -> pd.DataFrame:
    """One row per system: measured speed and memory, the smallest machine it fits, its price
    and the cost."""
    rows = []
    for result in (teacher, student):
        machine = machine_for(result, machines)
        rows.append(
            {
                **result,
                "machine": machine["name"],
                "machine_memory_gb": machine.get("memory_gb"),
                "price_per_hour": machine["price_per_hour"],
                "currency": machine.get("currency", "USD"),
                "cost_per_1000": cost_per_1000(
                    result["descriptions_per_s"], machine["price_per_hour"]
                ),
            }
        )
    return pd.DataFrame(rows)


def compare(table: pd.DataFrame) -> dict[str, Any]:
    """Student against teacher: each ratio, the reference case's figure and a sentence."""
    t, s = (table.set_index("system").loc[name] for name in ("teacher", "student"))
    measured = {
        "throughput_ratio": s["descriptions_per_s"] / t["descriptions_per_s"],
        "tokens_per_s_ratio": s["generated_tokens_per_s"] / t["generated_tokens_per_s"],
        "memory_reduction": 1 - s["model_peak_mb"] / t["model_peak_mb"],
        "process_memory_reduction": 1 - s["process_peak_mb"] / t["process_peak_mb"],
        # on a GPU: the CUDA allocator's reserved peak (NaN where a system used no GPU)
        "gpu_memory_reduction": 1
        - s.get("gpu_peak_reserved_mb", float("nan")) / t.get("gpu_peak_reserved_mb", float("nan")),
        "cost_reduction": 1 - s["cost_per_1000"] / t["cost_per_1000"],
        "latency_p50_ratio": t["latency_p50_s"] / s["latency_p50_s"],
        # as if both delivered texts of the same length: time per token of the final text
        "equal_length_throughput_ratio": t["seconds_per_final_token"]
        / s["seconds_per_final_token"],
        "teacher_gate_pass_rate": t["gate_pass_rate"],
        "student_gate_pass_rate": s["gate_pass_rate"],
    }
    measured = {k: float(v) for k, v in measured.items()}  # NaN where a system wrote nothing
    currency = t["currency"]
    return {
        # what was not measured (GPU memory on CPUs) is null: the summary stays valid JSON
        **{k: v if math.isfinite(v) else None for k, v in measured.items()},
        "reference": REFERENCE,
        "serving": {"teacher": t["serving"], "student": s["serving"]},
        "headline": [
            f"Throughput: the student writes {measured['throughput_ratio']:.1f}x as many "
            f"descriptions per second as the teacher pipeline (reference case: 4x); "
            f"{measured['equal_length_throughput_ratio']:.1f}x at equal output length.",
            f"Memory: the student needs {measured['memory_reduction']:.0%} less model memory "
            f"(weights plus runtime) than the teacher (reference case: 75% less).",
            f"Cost: {s['cost_per_1000']:.4f} {currency} per 1,000 descriptions against "
            f"{t['cost_per_1000']:.4f} {currency}, {measured['cost_reduction']:.0%} lower "
            f"(reference case: over 80% lower).",
        ],
    }
