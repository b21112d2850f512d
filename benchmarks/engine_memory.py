"""Where a served model's memory goes on OpenVINO GenAI: resident memory of a fresh process after
loading, after one request and after sixteen, for the trained student and the teacher as the
catalog serves them (int8 weights, 16 in flight, ``runtime.threads``), at ``precision: auto`` (as
served: bf16 compute and a u8 KV cache where the CPU has bf16) and ``f32`` (float32 compute and
KV cache). Both models get the same prompts (the student's, on Flipkart products), 64 new tokens
each.

    .venv/bin/python benchmarks/engine_memory.py [--products 16]

After `make run`. Each configuration runs in its own process; figures are MB above the process
before loading (docs/benchmarks.md, "Teacher pipeline against the student", memory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WORKER = """
import json, sys
import numpy as np
import openvino as ov
import openvino_genai as ov_genai
from transformers import AutoTokenizer

from product_descgen.evaluation.speed import rss_mb
from product_descgen.export.openvino import recorded_weights
from product_descgen.llm.openvino_backend import engine_properties
from product_descgen.runtime import threads

model_dir, precision, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(model_dir)
ids = [ov.Tensor(np.array([tokenizer(p)["input_ids"]], dtype=np.int64)) for p in prompts]
base = rss_mb()
scheduler = ov_genai.SchedulerConfig()
scheduler.max_num_seqs = 16
scheduler.enable_prefix_caching = True
properties = engine_properties(precision, threads(), recorded_weights(model_dir))
pipeline = ov_genai.ContinuousBatchingPipeline(model_dir, scheduler, "CPU", properties)
config = ov_genai.GenerationConfig()
config.max_new_tokens = 64
out = {"loaded": rss_mb() - base}
pipeline.generate(ids[:1], [config])
out["one request"] = rss_mb() - base
pipeline.generate(ids, [config] * len(ids))
out["sixteen requests"] = rss_mb() - base
print(json.dumps(out))
"""


def main() -> None:
    from speed_comparison import flipkart_items
    from speed_setup import load_speed_jobs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=16)
    args = parser.parse_args()
    _, teacher, student = load_speed_jobs()
    items = flipkart_items(args.products)
    prompts = [student.template.format(**item) for item in items]
    print("| model | precision | loaded | one request | sixteen requests |")  # noqa: T201
    print("|---|---|---:|---:|---:|")  # noqa: T201
    for name, job in (("student", student), ("teacher", teacher)):
        for precision in ("auto", "f32"):
            done = subprocess.run(
                [sys.executable, "-c", WORKER, job.model_dir, precision, json.dumps(prompts)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            mb = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {name} | {precision} | " + " | ".join(f"{v:.0f}" for v in mb.values()) + " |")  # noqa: T201


if __name__ == "__main__":
    main()
