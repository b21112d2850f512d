"""The GPU path end to end on a randomly initialised model of a real student's shape.

Builds the model (default: Llama-2-7B's shape, with the carried SmolLM2 tokenizer), trains it
with the finetune pipeline's own training function (Ludwig QLoRA with the epoch recorder: probe
generation and the vice detector) under conf/gpu's finetune block for one epoch, saves it through
the pipeline's datasets, then runs evaluation's and describe's student nodes with conf/gpu's
student_llm (transformers, nf4, CUDA). Prints one JSON of figures and writes it to OUT.

Run by ``scripts/gpu_check.sh run`` (which sets PYTHONPATH to the carried packages). Settings
from the environment: SHAPE (llama2-7b | tiny), ROWS (training rows, default 64), OUT (folder,
default ./gpu_check_out), MODEL_DIR (default /dev/shm/gpu_check_model when it has room).
SHAPE=tiny runs on a CPU too: the same code paths, for a smoke test.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
BUNDLE = HERE.parent  # the project's root, or the packed bundle's
SHAPES = {
    "llama2-7b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                  "num_key_value_heads": 32, "intermediate_size": 11008},
    # divisible by bitsandbytes' block sizes, so nf4 also runs on a CPU
    "tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 4, "intermediate_size": 256},
}  # fmt: skip
# The reference case: 1,000 examples x 12 epochs, batch 4 x 4 accumulation, ~3 h on an A100-40GB.
REFERENCE = {"examples": 1000, "epochs": 12, "examples_per_step": 16, "hours_a100_40gb": 3.0}
logger = logging.getLogger("gpu_check")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 3)


def build_model(shape: str, model_dir: Path) -> dict[str, Any]:
    """A random Llama model of ``shape`` in bf16 (float32 on a CPU) with the carried tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(BUNDLE / "gpu_check" / "tokenizer")
    config = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=4096, rms_norm_eps=1e-5,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        **SHAPES[shape],
    )  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    started = time.perf_counter()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    shutil.rmtree(model_dir, ignore_errors=True)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    torch.cuda.empty_cache() if device == "cuda" else None
    return {"shape": shape, "params_b": round(n_params / 1e9, 3), "device": device,
            "build_and_save_s": round(time.perf_counter() - started, 1)}  # fmt: skip


def step_timer() -> Any:
    """A Ludwig callback: wall time of every micro-batch, whether it ended an optimizer step."""
    from ludwig.callbacks import Callback

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.batches: list[dict[str, Any]] = []
            self.train_init = self.train_start = None

        def on_train_init(self, *args: Any, **kwargs: Any) -> None:
            self.train_init = time.perf_counter()

        def on_train_start(self, *args: Any, **kwargs: Any) -> None:
            self.train_start = time.perf_counter()

        def on_batch_start(self, trainer: Any, progress_tracker: Any, *args: Any, **kw: Any):
            sync()
            self._started = (time.perf_counter(), progress_tracker.total_tokens_used)

        def on_batch_end(self, trainer: Any, progress_tracker: Any, *args: Any, **kw: Any):
            sync()
            started, tokens = self._started
            self.batches.append({
                "start": started, "end": time.perf_counter(),
                "tokens": progress_tracker.total_tokens_used - tokens,
                "sync_step": bool(kw.get("sync_step", True)),
            })  # fmt: skip

    return StepTimer()


def training_figures(timer: Any, accumulation: int) -> dict[str, Any]:
    """Steady-state seconds per micro-batch and per optimizer step (the first step excluded),
    train tokens/s and the reference workload's projected hours."""
    batches = timer.batches
    steps, group = [], []
    for batch in batches:
        group.append(batch)
        if batch["sync_step"]:
            steps.append(group)
            group = []
    warm_steps = [g for g in steps[1:] if len(g) == accumulation] or steps
    warm = [b for g in warm_steps for b in g]
    micro_s = sum(b["end"] - b["start"] for b in warm) / len(warm)
    step_s = sum(g[-1]["end"] - g[0]["start"] for g in warm_steps) / len(warm_steps)
    tokens = sum(b["tokens"] for b in warm) / len(warm)
    per_epoch = -(-REFERENCE["examples"] // REFERENCE["examples_per_step"])
    return {
        "model_load_s": round(timer.train_start - timer.train_init, 1),
        "micro_batches": len(batches),
        "optimizer_steps": len(steps),
        "seconds_per_micro_batch": round(micro_s, 4),
        "seconds_per_optimizer_step": round(step_s, 4),
        "train_tokens_per_s": round(tokens / micro_s, 1),
        # optimizer steps only: validation, probes and checkpoints come on top
        "projected_hours_reference_workload": round(
            per_epoch * REFERENCE["epochs"] * step_s / 3600, 3
        ),
    }


def train(model_dir: Path, work: Path, env: str | None, rows: pd.DataFrame) -> dict[str, Any]:
    """One epoch with the finetune pipeline's training function; the model and adapter saved
    through its datasets. Returns the figures and what generation needs."""
    from product_descgen.datasets.models import LudwigModelDataset, PeftAdapterDataset
    from product_descgen.project_config import load_project_params
    from product_descgen.training.config import FinetuneParams, build_ludwig_config
    from product_descgen.training.train import train_student

    cuda = torch.cuda.is_available()
    params = load_project_params(env, BUNDLE)
    finetune = FinetuneParams.model_validate(params["finetune"])
    trainer = {**finetune.ludwig["trainer"], "epochs": 1, "early_stop": -1}
    finetune = finetune.model_copy(
        update={"ludwig": {**finetune.ludwig, "trainer": trainer}, "work_dir": work}
    )
    n_rows = int(os.environ.get("ROWS", "64" if cuda else "8"))
    train_rows, validation = rows.head(n_rows), rows.iloc[n_rows : n_rows + 16]
    config = build_ludwig_config(finetune, str(model_dir), list(train_rows.columns))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timer = step_timer()
    trained = train_student(config, train_rows, validation, validation, finetune, callbacks=[timer])
    figures = {
        **training_figures(timer, int(trainer["gradient_accumulation_steps"])),
        "rows": len(train_rows), "probe_texts": len(trained.probe_outputs),
        "vice_flags": trained.history["flags"].tolist(),
    }  # fmt: skip
    if cuda:
        figures["peak_gpu_allocated_gib"] = gib(torch.cuda.max_memory_allocated())
        figures["peak_gpu_reserved_gib"] = gib(torch.cuda.max_memory_reserved())
    LudwigModelDataset(str(work / "student_model")).save(trained.model)
    adapters = PeftAdapterDataset(str(work / "student_adapter"))
    adapters.save(trained.model)
    del trained
    if cuda:
        torch.cuda.empty_cache()
    return {"figures": figures, "params": params, "finetune": finetune,
            "adapter": adapters.load(), "used_rows": n_rows + len(validation)}  # fmt: skip


def generate(
    trained: dict[str, Any], model_dir: Path, env: str | None, items: pd.DataFrame
) -> dict[str, Any]:
    """Describe's and evaluation's student nodes with conf/gpu's student_llm."""
    from product_descgen.callstore import CallStore
    from product_descgen.evaluation.config import DescribeParams, EvaluationParams
    from product_descgen.llm.backends import Connection
    from product_descgen.pipelines.describe.nodes import (
        check_new_descriptions,
        generate_new_descriptions,
    )
    from product_descgen.pipelines.evaluation.nodes import describe_with_student, serve_student
    from product_descgen.prep.config import DataPrepParams
    from product_descgen.project_config import load_project_config

    cuda = torch.cuda.is_available()
    params, finetune, adapter = trained["params"], trained["finetune"], trained["adapter"]
    catalog = load_project_config("catalog", env, BUNDLE)
    student_llm = Connection.model_validate(catalog["student_llm"]["connection"])
    if not cuda:
        student_llm = Connection(backend="transformers", device="cpu", quantization="nf4")
    student_llm = student_llm.model_copy(update={"model_dir": str(model_dir)})
    evaluation = EvaluationParams.model_validate(params["evaluation"])
    describe = DescribeParams.model_validate({**params["describe"], "progress": False})
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    served = serve_student(adapter, "", student_llm, finetune, evaluation)
    stores = Path(tempfile.mkdtemp(prefix="gpu_check_calls_"))  # one each: both generate
    outputs = generate_new_descriptions(
        items, served, CallStore(stores / "describe.sqlite"), describe
    )
    seconds = time.perf_counter() - started
    data_prep = DataPrepParams.model_validate(params["data_prep"])
    checked = check_new_descriptions(items, outputs, items.head(0), items, describe, data_prep)
    evaluated = describe_with_student(
        items, served, CallStore(stores / "evaluation.sqlite"), evaluation
    )
    return {
        "serving": student_llm.serving,
        "rows": len(outputs),
        "rows_with_text": int(outputs["text"].notna().sum()),
        "errors": sorted(set(outputs["error"].dropna())),
        "seconds_with_load": round(seconds, 1),
        "generated_tokens_per_s_with_load": round(outputs["completion_tokens"].sum() / seconds, 1),
        "described_rows": len(checked),
        "evaluation_rows": len(evaluated),
        "evaluation_rows_with_text": int(evaluated["text"].notna().sum()),
        **({"peak_gpu_allocated_gib": gib(torch.cuda.max_memory_allocated())} if cuda else {}),
    }


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cuda = torch.cuda.is_available()
    shape = os.environ.get("SHAPE", "llama2-7b")
    if not cuda and shape != "tiny":
        raise SystemExit("no CUDA device: only SHAPE=tiny runs on a CPU")
    out_dir = Path(os.environ.get("OUT", "gpu_check_out"))
    out_dir.mkdir(parents=True, exist_ok=True)
    shm = Path("/dev/shm")
    roomy = shm.is_dir() and shutil.disk_usage(shm).free > 20 * 2**30
    model_dir = Path(os.environ.get("MODEL_DIR", (shm if roomy else Path("/tmp")) / "gpu_model"))
    work = Path(os.environ.get("WORK_DIR", "/tmp/gpu_check_work"))
    shutil.rmtree(work, ignore_errors=True)
    env = "gpu" if cuda else None  # a CPU smoke run: base's float32 settings
    rows = pd.read_json(BUNDLE / "gpu_check" / "rows.jsonl", lines=True, dtype={"product_id": str})
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "model": build_model(shape, model_dir),
    }
    trained = train(model_dir, work, env, rows)
    result["training"] = trained["figures"]
    first = trained["used_rows"]
    items = rows.iloc[first : first + (16 if cuda else 4)]
    result["generation"] = generate(trained, model_dir, env, items)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))  # noqa: T201 - the script's output
    g = result["generation"]
    ok = g["rows_with_text"] == g["rows"] > 0 and g["evaluation_rows_with_text"] == g["rows"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
