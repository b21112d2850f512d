"""Seconds per training step: Ludwig QLoRA, Ludwig LoRA and a plain peft loop, side by side.

    .venv/bin/python benchmarks/finetune_step_time.py [--steps 6] [--batch 4]

Same student (``models.student``), same batches (demo-like prompt + target pairs through the
finetune prompt template), same LoRA settings (``finetune.ludwig.adapter``), one process, one
after the other. Ludwig's times come from ``on_batch_start``/``on_batch_end`` callbacks, so they
cover what Ludwig does per step (forward, backward, optimizer, its bookkeeping), not its setup.
Prints the table (docs/benchmarks.md, "Fine-tuning step time").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from product_descgen.models import resolve_model_dir  # noqa: E402
from product_descgen.project_config import load_project_models, load_project_params  # noqa: E402
from product_descgen.runtime import ENV_VAR as THREADS_ENV  # noqa: E402
from product_descgen.runtime import RuntimeParams, set_threads  # noqa: E402
from product_descgen.training import ludwig_compat  # noqa: E402
from product_descgen.training.config import FinetuneParams, build_ludwig_config  # noqa: E402


def batches_frame(n: int) -> pd.DataFrame:
    rows = [
        {
            "input_text": f"Product: Stoneware Mug {i}\nCategory: Kitchen & Dining\n"
            "Attributes:\n- Capacity: 350 ml\n- Material: Stoneware\n- Color: Sage green",
            "target": "This sage green stoneware mug holds 350 ml of tea or coffee and keeps "
            "its glaze through daily use in the dishwasher. " * 2,
        }
        for i in range(n)
    ]
    return pd.DataFrame(rows)


FRESH_PROCESS_STEPS = """
import json, statistics, sys
sys.path.insert(0, {here!r})
import pandas as pd
from finetune_step_time import batches_frame, ludwig_steps
from product_descgen.models import resolve_model_dir
from product_descgen.project_config import load_project_models, load_project_params
from product_descgen.runtime import set_threads
from product_descgen.training import ludwig_compat
from product_descgen.training.config import FinetuneParams, build_ludwig_config
set_threads({threads})
ludwig_compat.apply()
project = load_project_params()
if {dtype!r} is not None:
    project["finetune"]["ludwig"]["quantization"]["bnb_4bit_compute_dtype"] = {dtype!r}
params = FinetuneParams.model_validate(project["finetune"])
models = load_project_models()
base = resolve_model_dir(models.student, models.cache_dir)
rows = ({steps} + 1) * 4
if {data!r} is None:
    data = batches_frame(rows)
else:
    data = pd.read_parquet({data!r})[[params.input_column, params.target_column]].head(rows)
times = ludwig_steps(build_ludwig_config(params, base, list(data.columns)), data, 4)
print(json.dumps({{"seconds_per_step": statistics.median(times[1:])}}))
"""


def step_s_in_fresh_process(
    threads: int, steps: int, dtype: str | None = None, data: Path | None = None
) -> float:
    """Median seconds per Ludwig QLoRA step (batch 4, first step excluded) in a fresh process
    with ``threads`` threads: on this script's batches, or on the rows of ``data`` (a parquet
    file with the finetune columns); ``dtype`` overrides the compute dtype."""
    code = FRESH_PROCESS_STEPS.format(here=str(Path(__file__).resolve().parent), threads=threads,
                                      steps=steps, dtype=dtype,
                                      data=str(data) if data else None)  # fmt: skip
    env = {**os.environ, THREADS_ENV: str(threads), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds_per_step"]


def ludwig_steps(config: dict, data: pd.DataFrame, batch: int) -> list[float]:
    from ludwig.api import LudwigModel
    from ludwig.callbacks import Callback

    class Timer(Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._t = 0.0

        def on_batch_start(self, *args, **kwargs) -> None:
            self._t = time.perf_counter()

        def on_batch_end(self, *args, **kwargs) -> None:
            self.times.append(time.perf_counter() - self._t)

    timer = Timer()
    trainer = {**config["trainer"], "epochs": 1, "batch_size": batch,
               "gradient_accumulation_steps": 1, "early_stop": -1}  # fmt: skip
    model = LudwigModel(
        {**config, "trainer": trainer}, logging_level=logging.ERROR, callbacks=[timer]
    )
    model.train(training_set=data, validation_set=data.head(batch),
                output_directory="/tmp/finetune_bench", skip_save_processed_input=True)  # fmt: skip
    return timer.times


def peft_steps(base: str, params: FinetuneParams, data: pd.DataFrame, batch: int,
               quantization: dict | None) -> list[float]:  # fmt: skip
    """Plain peft steps; ``quantization``: the Ludwig config's block as built (its compute dtype
    resolved), or None for LoRA on the full-precision base."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    kwargs = {}
    if q := quantization:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=q["bnb_4bit_quant_type"],
            bnb_4bit_use_double_quant=q["bnb_4bit_use_double_quant"],
            bnb_4bit_compute_dtype=getattr(torch, q["bnb_4bit_compute_dtype"]),
        )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if quantization:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    a = params.ludwig["adapter"]
    model = get_peft_model(model, LoraConfig(r=a["r"], lora_alpha=a["alpha"],
                                             lora_dropout=a["dropout"],
                                             target_modules=a["target_modules"],
                                             task_type="CAUSAL_LM"))  # fmt: skip
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    texts = [params.prompt_template.format(**r) + r["target"] for r in data.to_dict("records")]
    times = []
    model.train()
    for start in range(0, len(texts), batch):
        enc = tokenizer(texts[start : start + batch], return_tensors="pt", padding=True)
        t = time.perf_counter()
        loss = model(**enc, labels=enc["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    project = load_project_params()
    set_threads(RuntimeParams.model_validate(project.get("runtime", {})).resolved_threads())
    ludwig_compat.apply()
    models = load_project_models()
    base = resolve_model_dir(models.student, ROOT / models.cache_dir)
    params = FinetuneParams.model_validate(project["finetune"])
    data = batches_frame((args.steps + 1) * args.batch)
    qlora = build_ludwig_config(params, base, list(data.columns))
    lora = build_ludwig_config(params.model_copy(update={"quantization": False}), base,
                               list(data.columns))  # fmt: skip
    runs = {
        ("Ludwig", "QLoRA (4-bit nf4)"): ludwig_steps(qlora, data, args.batch),
        ("Ludwig", "LoRA (fp32)"): ludwig_steps(lora, data, args.batch),
        ("plain peft", "QLoRA (4-bit nf4)"): peft_steps(
            base, params, data, args.batch, qlora["quantization"]
        ),
        ("plain peft", "LoRA (fp32)"): peft_steps(base, params, data, args.batch, None),
    }
    median = {key: statistics.median(times[1:]) for key, times in runs.items()}
    table = pd.DataFrame(
        [
            {"path": f"{tool} {kind}", "steps timed": len(runs[tool, kind]) - 1,
             "s/step (median)": median[tool, kind],
             "vs plain peft": median[tool, kind] / median["plain peft", kind]}
            for tool, kind in runs
        ]
    )  # fmt: skip
    print(table.round(3).to_markdown(index=False))  # noqa: T201 - the benchmark's report
    logging.getLogger(__name__).info(
        "%s (%d cores), %d thread(s), student %s, batch %d, first step excluded",
        platform.machine(), os.cpu_count(), torch.get_num_threads(), Path(base).name, args.batch,
    )  # fmt: skip


if __name__ == "__main__":
    main()
