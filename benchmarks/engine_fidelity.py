"""The OpenVINO engine's text against the transformers reference, on real products and the real
teacher and trained student (after ``make run``).

    .venv/bin/python benchmarks/engine_fidelity.py [--products 64] [--tokens 30] [--gate]

Agreement: greedy, the first ``--tokens`` tokens of the teacher's draft step and of the student,
served by transformers in float32 (the reference) and by OpenVINO in two settings: float32
weights with float32 inference (``precision: f32``) and as the catalog serves them (its weights
and precision). Reported: the share of prompts whose first tokens equal the reference's, and the
mean agreeing prefix. Tokens are the served text re-tokenised by the model's tokenizer.

``--gate``: full descriptions with the configured settings (the speed test's jobs: the teacher's
two steps, the student's one), reference against the engine as served, each in a fresh process;
the quality gate's pass rates, their difference, and the noise band (two standard errors of a
difference of two proportions on these N products).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_comparison import flipkart_items  # noqa: E402
from speed_setup import gate_texts, load_speed_jobs, newest_student_adapter  # noqa: E402

from product_descgen.evaluation import speed  # noqa: E402
from product_descgen.evaluation.inference import student_requests  # noqa: E402
from product_descgen.export.student import base_model_dir, student_for_openvino  # noqa: E402
from product_descgen.llm.backends import Connection, make_backend  # noqa: E402
from product_descgen.llm.types import GenerationSettings  # noqa: E402
from product_descgen.models import ModelsParams, openvino_dir, resolve_model_dir  # noqa: E402
from product_descgen.project_config import load_project_models  # noqa: E402
from product_descgen.prompting import PromptSet  # noqa: E402
from product_descgen.step_runner import step_requests  # noqa: E402
from product_descgen.teacher.generate import draft_variables  # noqa: E402

REFERENCE = Connection(backend="transformers", device="cpu", dtype="float32", batch_size=16)


def prefix_agreement(reference: list[list[int]], other: list[list[int]], n: int) -> dict:
    """Share of rows whose first ``n`` tokens are equal, and the mean agreeing prefix length."""
    equal, prefixes = [], []
    for ref_ids, got_ids in zip(reference, other, strict=True):
        ref, got = ref_ids[:n], got_ids[:n]
        prefix = 0
        for a, b in zip(ref, got, strict=False):
            if a != b:
                break
            prefix += 1
        equal.append(ref == got)
        prefixes.append(prefix)
    return {"first_tokens_equal": sum(equal) / len(equal),
            "mean_prefix": sum(prefixes) / len(prefixes)}  # fmt: skip


def token_ids(model_dir: str, texts: list[str | None]) -> list[list[int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [tokenizer(t or "", add_special_tokens=False).input_ids for t in texts]


def served_texts(connection: Connection, model_dir: str, requests, settings, adapter=None):
    backend = make_backend(connection, model_dir, settings, adapter=adapter)
    by_key = {r.key: r.text for chunk in backend.generate(requests) for r in chunk}
    return [by_key[r.key] for r in requests]


def agreement(args, items, student_job, teacher_job) -> dict:
    models = load_project_models()
    greedy = GenerationSettings(max_new_tokens=args.tokens)
    prompts = PromptSet.model_validate(teacher_job.prompts)
    teacher_hf = resolve_model_dir(models.teacher, models.cache_dir)
    rules = teacher_job.rules or {}
    draft = prompts.with_stop(greedy)
    teacher_reqs = step_requests(
        items, prompts, "draft", teacher_hf, draft, lambda it: draft_variables(it, rules)
    )
    import pandas as pd

    student_reqs = student_requests(pd.DataFrame(items), student_job.template or "")
    adapter = student_job.adapter or newest_student_adapter()
    out = {}
    fp32_student = student_for_openvino(adapter, "fp32")
    try:
        systems = {
            "teacher": (teacher_hf, None, teacher_reqs, draft, teacher_job,
                        openvino_dir(models.teacher, models.cache_dir, "fp32")),
            "student": (str(base_model_dir(adapter)), adapter, student_reqs, greedy, student_job,
                        str(fp32_student)),
        }  # fmt: skip
        for name, (hf_dir, adapter_dir, reqs, settings, job, ov_fp32) in systems.items():
            ref = token_ids(hf_dir, served_texts(REFERENCE, hf_dir, reqs, settings, adapter_dir))
            f32 = Connection(backend="openvino", weights="fp32", precision="f32", batch_size=16)
            rows = {
                "openvino fp32 (f32)": served_texts(f32, ov_fp32, reqs, settings),
                f"openvino as served: {job.connection.serving}": served_texts(
                    job.connection, job.model_dir, reqs, settings
                ),
            }
            out[name] = {
                label: prefix_agreement(ref, token_ids(hf_dir, texts), args.tokens)
                for label, texts in rows.items()
            }
    finally:
        shutil.rmtree(fp32_student, ignore_errors=True)
    return out


def gate_rates(teacher_job, student_job, models: ModelsParams) -> dict:
    out = {}
    for job in (teacher_job, student_job):
        if job.system == "teacher":
            hf_dir, adapter = resolve_model_dir(models.teacher, models.cache_dir), None
        else:
            adapter = job.adapter or newest_student_adapter()
            hf_dir = str(base_model_dir(adapter))
        reference = job.model_copy(update={"connection": REFERENCE, "model_dir": hf_dir,
                                           "adapter": adapter})  # fmt: skip
        results = [speed.run_isolated(reference, 7200), speed.run_isolated(job, 7200)]
        gate_texts(results, job.items)
        labels = ("transformers float32", f"openvino {job.connection.serving}")
        rates = {label: r["gate_pass_rate"] for label, r in zip(labels, results, strict=True)}
        ref_rate, engine_rate = rates.values()
        n = len(job.items)
        band = speed.difference_band(ref_rate, engine_rate, n)
        out[job.system] = {**rates, "difference": engine_rate - ref_rate, "noise_band": band,
                           "n": n}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=30)
    parser.add_argument("--gate", action="store_true")
    args = parser.parse_args()
    _, teacher_job, student_job = load_speed_jobs()
    items = flipkart_items(args.products, seed=1)
    result = {"agreement": agreement(args, items, student_job, teacher_job), "n": len(items)}
    print(json.dumps(result, indent=1))  # noqa: T201
    if args.gate:
        update = {"items": items, "warmup_items": []}
        models = load_project_models()
        rates = gate_rates(
            teacher_job.model_copy(update=update), student_job.model_copy(update=update), models
        )
        print(json.dumps({"gate": rates}, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
