"""Cost per description and the ratios against the reference case, by hand."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from product_descgen.evaluation.cost import compare, cost_per_1000, smallest_machine, speed_table


def result(system: str, dps: float, tps: float, peak: float, p50: float) -> dict:
    return {"system": system, "serving": "int8", "descriptions_per_s": dps,
            "generated_tokens_per_s": tps, "model_peak_mb": peak,
            "process_peak_mb": peak + 1000, "latency_p50_s": p50,
            "seconds_per_final_token": 1 / tps, "gate_pass_rate": 0.9}  # fmt: skip


def test_cost_per_1000_is_machine_time_priced_by_the_hour():
    # 0.5 descriptions/s -> 2,000 s per 1,000 -> 0.5556 h at 3.6/h = 2.0
    assert cost_per_1000(0.5, 3.6) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        cost_per_1000(0.0, 1.0)


def test_compare_states_each_ratio_next_to_the_reference():
    machines = [{"name": "small", "memory_gb": 1.5, "price_per_hour": 0.6},
                {"name": "GPU", "memory_gb": 24, "price_per_hour": 1.2}]  # fmt: skip
    table = speed_table(
        result("teacher", 0.25, 80.0, 2000.0, 40.0), result("student", 1.0, 120.0, 400.0, 10.0),
        machines,
    )  # fmt: skip
    assert isinstance(table, pd.DataFrame) and table["machine"].tolist() == ["GPU", "small"]
    summary = compare(table)
    assert summary["throughput_ratio"] == pytest.approx(4.0)
    assert summary["equal_length_throughput_ratio"] == pytest.approx(120 / 80)
    assert summary["memory_reduction"] == pytest.approx(0.8)  # 1 - 400/2000
    assert summary["process_memory_reduction"] == pytest.approx(1 - 1400 / 3000)
    # teacher: 1.2/3600/0.25*1000 = 1.3333; student: 0.6/3600/1.0*1000 = 0.16667 -> 87.5% lower
    assert summary["cost_reduction"] == pytest.approx(0.875)
    assert summary["reference"] == {"throughput_ratio": 4.0, "memory_reduction": 0.75,
                                    "cost_reduction": 0.80}  # fmt: skip
    assert "4.0x" in summary["headline"][0] and "(reference case: 4x)" in summary["headline"][0]
    assert "80% less" in summary["headline"][1] and "88% lower" in summary["headline"][2]
    # no GPU used: not measured, so null, and the summary is strict JSON (no NaN token)
    assert summary["gpu_memory_reduction"] is None
    json.dumps(summary, allow_nan=False)


def test_each_system_gets_the_cheapest_machine_that_holds_its_process():
    machines = [
        {"name": "big", "memory_gb": 8, "price_per_hour": 0.08},
        {"name": "any", "price_per_hour": 0.5},
        {"name": "small", "memory_gb": 2, "price_per_hour": 0.02},
    ]
    assert smallest_machine(1500.0, machines)["name"] == "small"
    assert smallest_machine(2048.0, machines)["name"] == "small"  # exactly 2 GiB fits
    assert smallest_machine(2049.0, machines)["name"] == "big"
    assert smallest_machine(9000.0, machines)["name"] == "any"  # no memory stated: holds any
    with pytest.raises(ValueError, match="holds a process of 9000 MiB: add one"):
        smallest_machine(9000.0, machines[:1])


def test_a_process_that_used_a_gpu_gets_a_machine_whose_gpu_holds_it():
    machines = [
        {"name": "cpu", "memory_gb": 64, "price_per_hour": 0.1},
        {"name": "L4", "memory_gb": 32, "gpu_memory_gb": 24, "price_per_hour": 0.8},
        {"name": "A100", "memory_gb": 85, "gpu_memory_gb": 40, "price_per_hour": 3.7},
    ]
    assert smallest_machine(4000.0, machines)["name"] == "cpu"
    assert smallest_machine(4000.0, machines, gpu_peak_mb=20_000.0)["name"] == "L4"
    assert smallest_machine(4000.0, machines, gpu_peak_mb=30_000.0)["name"] == "A100"
    with pytest.raises(ValueError, match="and 50000 MiB of GPU memory"):
        smallest_machine(4000.0, machines, gpu_peak_mb=50_000.0)
    teacher = {**result("teacher", 0.25, 80.0, 2000.0, 40.0), "gpu_peak_reserved_mb": 30_000.0}
    student = {**result("student", 1.0, 120.0, 400.0, 10.0), "gpu_peak_reserved_mb": 6_000.0}
    table = speed_table(teacher, student, machines)
    assert table["machine"].tolist() == ["A100", "L4"]
    assert compare(table)["gpu_memory_reduction"] == pytest.approx(0.8)
