"""The speed worker: a real separate process, real memory counters, both systems."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from product_descgen.evaluation.speed import (
    SpeedJob,
    difference_band,
    gate_outputs,
    peak_mb,
    reset_peak,
    round_ratios,
    rss_mb,
    run_isolated,
)
from product_descgen.llm.backends import Connection
from product_descgen.llm.types import GenerationSettings
from product_descgen.quality.checks import GateParams, check_description
from tests.conftest import PROJECT_ROOT

ITEMS = [{"product_id": f"p{i}", "input_text": f"Product: Mug {i}\n- Color: Red",
          "audience": "tea lovers"} for i in range(3)]  # fmt: skip


def test_peak_counter_resets_to_current_memory():
    blob = bytearray(64 * 1024 * 1024)  # 64 MB touched
    blob[::4096] = b"x" * len(blob[::4096])
    del blob
    reset_peak()
    assert peak_mb() == pytest.approx(rss_mb(), abs=16)


def test_the_throughput_ratio_is_taken_round_by_round():
    rounds = [("teacher", 0, 0.5), ("student", 0, 2.0), ("student", 1, 1.5), ("teacher", 1, 0.5)]
    results = [{"system": s, "round": r, "descriptions_per_s": d} for s, r, d in rounds]
    assert round_ratios(results) == [4.0, 3.0]


@pytest.mark.slow
@pytest.mark.parametrize("system", ["teacher", "student"])
def test_each_system_is_measured_in_its_own_process(system, tiny_model_dir):
    short = GenerationSettings(max_new_tokens=6, temperature=1.0)
    prompts = yaml.safe_load((PROJECT_ROOT / "conf/base/prompts/teacher_base.yml").read_text())
    extra = (
        {"prompts": prompts, "rules": {"min_words": 5, "max_words": 50, "max_paragraphs": 2},
         "draft": short, "refine": short}
        if system == "teacher"
        else {"template": "### Product\n{input_text}\n### Description\n", "generation": short}
    )  # fmt: skip
    job = SpeedJob(system=system, connection=Connection(backend="transformers", device="cpu"),
                   model_dir=str(tiny_model_dir), items=ITEMS, **extra)  # fmt: skip
    result = run_isolated(job, timeout_s=300)
    assert result["system"] == system and result["descriptions"] == 3
    assert result["inferences_per_description"] == (2 if system == "teacher" else 1)
    assert result["generated_tokens"] > 0 and result["descriptions_per_s"] > 0
    assert result["loaded_mb"] <= result["model_peak_mb"] < result["process_peak_mb"]
    assert result["model_peak_mb"] > 0 and result["rss_before_load_mb"] > 100  # torch imported
    assert result["latency_p50_s"] <= result["latency_p95_s"]
    steps = ("draft", "refine") if system == "teacher" else ("describe",)
    for step in steps:
        assert result[f"{step}_prompt_tokens"] > 0 and result[f"{step}_generated_tokens"] > 0
    assert result["load_average"] >= 0
    assert result["product_ids"] == [item["product_id"] for item in ITEMS]
    assert len(result["texts"]) == len(result["finish"]) == len(ITEMS)


def test_a_failing_worker_reports_its_error(tmp_path):
    job = SpeedJob(system="student", connection=Connection(), model_dir=str(tmp_path / "none"),
                   items=ITEMS, template="{input_text}")  # fmt: skip
    with pytest.raises(RuntimeError, match="speed test of the student failed"):
        run_isolated(job, timeout_s=120)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openvino", "transformers"])
def test_loading_a_model_imports_no_library_after_the_baseline(
    backend, tiny_model_dir, tiny_openvino_dir
):
    """Library code is the process's footprint, not the model's: the worker imports what
    loading needs before it takes the memory baseline, for every backend alike."""
    import json
    import subprocess
    import sys

    model_dir = tiny_openvino_dir if backend == "openvino" else tiny_model_dir
    connection = Connection(backend=backend, device="cpu", weights="fp32")
    job = SpeedJob(system="student", connection=connection, model_dir=str(model_dir),
                   items=ITEMS, template="{input_text}")  # fmt: skip
    code = (
        "import json, sys\n"
        "from product_descgen.evaluation import speed\n"
        "from product_descgen.llm.backends import make_backend\n"
        "from product_descgen.llm.types import GenerationSettings\n"
        "job = speed.SpeedJob.model_validate_json(sys.argv[1])\n"
        "speed._import_libraries(job)\n"
        "before = {m.split('.')[0] for m in sys.modules}\n"
        "make_backend(job.connection, job.model_dir, GenerationSettings())\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, job.model_dump_json()],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    new = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not new & {"torch", "transformers", "openvino", "openvino_genai", "peft"}


def test_machines_that_hold_no_process_fail_after_the_first_round(monkeypatch):
    """The check came after every round: the whole speed test was paid, then thrown away."""
    from product_descgen.evaluation import cost, speed

    measured = []

    def run_isolated(job, timeout_s):
        measured.append(job)
        return {"system": job, "process_peak_mb": 1663.0, "gpu_peak_reserved_mb": float("nan")}

    monkeypatch.setattr(speed, "run_isolated", run_isolated)
    tiny = [{"name": "tiny", "memory_gb": 1, "price_per_hour": 0.01}]
    with pytest.raises(ValueError, match="holds a process of 1663 MiB"):
        speed.run_pairs(("teacher", "student"), 3, 60, lambda r: cost.check_machines(r, tiny))
    assert measured == ["teacher", "student"]  # one round, not three
    big = [{"name": "big", "memory_gb": 4, "price_per_hour": 0.1}]
    runs = speed.run_pairs(("teacher", "student"), 3, 60, lambda r: cost.check_machines(r, big))
    assert len(runs) == 6


def test_delivered_texts_go_through_the_gate_the_teacher_and_describe_use():
    """Not the rule checks alone: a fluent text about another product passes those, and the
    gate's off-product check (against the catalogue) rejects it."""
    from tests.quality.test_off_product import ITEMS as PRODUCTS
    from tests.quality.test_off_product import TEXTS

    catalogue = pd.DataFrame(
        {"product_id": list(PRODUCTS), "input_text": [f"Product: {v}" for v in PRODUCTS.values()]}
    )
    ids = ["kettle", "ring", "earphones"]
    about_a_tent = "Pitch this roomy tent at the campsite and sleep soundly under the stars."
    teacher = {"system": "teacher", "serving": "s", "round": 0, "product_ids": ids,
               "texts": [TEXTS["kettle"], TEXTS["ring"], about_a_tent],
               "finish": ["stop"] * 3}  # fmt: skip
    student = teacher | {"system": "student", "texts": [TEXTS["kettle"], None, about_a_tent]}
    gate = GateParams(min_words=5)
    inputs = dict(zip(catalogue["product_id"], catalogue["input_text"], strict=True))
    assert not check_description(teacher["texts"][2], inputs["earphones"], gate, "stop")

    results = [teacher, student]
    outputs = gate_outputs(results, catalogue, gate, None)
    assert outputs["passed"].tolist() == [True, True, False, True, False, False]
    assert outputs["reasons"].tolist()[2] == "off_product"
    assert outputs["reasons"].tolist()[4] == "generation_failed"
    assert [r["gate_pass_rate"] for r in results] == [2 / 3, 1 / 3]
    assert set(outputs.columns) >= {"round", "system", "product_id", "text", "finish_reason"}
    with pytest.raises(ValueError, match="1 measured products are not in the catalogue"):
        gate_outputs([teacher | {"product_ids": ["kettle", "ring", "gone"]}], catalogue, gate, None)
    assert difference_band(0.5, 0.25, 8) == pytest.approx(0.4290, abs=1e-4)  # 5/10 and 3/10
    assert difference_band(0.0, 0.0, 8) == pytest.approx(0.2683, abs=1e-4)  # 1/10 each: not ±0
    assert difference_band(None, 0.25, 8) is None
