"""Teacher throughput on this machine: descriptions/s and generated tokens/s by batch size.

    .venv/bin/python benchmarks/teacher_throughput.py            # writes docs/benchmarks.md section
    .venv/bin/python benchmarks/teacher_throughput.py --quick    # fewer prompts, no file written
    .venv/bin/python benchmarks/teacher_throughput.py --quantization int8 --sizes 16 32

Side by side in one run, on the same real draft prompts (demo catalogue, teacher_base.yml):
* ``plain``: one ``model.generate`` per batch in input order (the naive baseline);
* ``pipeline``: the project's ``TransformersBackend`` (length-sorted batches, the shared
  prompt prefix computed once and reused, inference mode, stop strings), as
  teacher_generation runs it.
Time is split into tokenisation, prefill (the first forward pass), decode (the other forward
passes) and the rest of ``generate`` (Python overhead: logits processing, stopping criteria,
cache bookkeeping), measured with forward hooks.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from product_descgen.llm.hf_backend import TransformersBackend  # noqa: E402
from product_descgen.llm.prompts import PromptSet, render  # noqa: E402
from product_descgen.llm.types import GenerationSettings  # noqa: E402
from product_descgen.models import ModelsParams, resolve_model_dir  # noqa: E402
from product_descgen.project_config import load_project_params  # noqa: E402

logger = logging.getLogger("benchmark")


class ForwardTimer:
    """Times every forward pass of the model: the first of a generate call is the prefill."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls: list[float] = []
        self._start = 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_: object) -> None:
        self._start = time.perf_counter()

    def _post(self, *_: object) -> None:
        self.calls.append(time.perf_counter() - self._start)


def draft_prompts(n: int) -> list[str]:
    inputs = ROOT / "data" / "04_feature" / "model_inputs.parquet"
    if not inputs.exists():
        sys.exit("run `kedro run --pipeline data_prep` first (needs model_inputs.parquet)")
    frame = pd.read_parquet(inputs).head(n)
    prompts = PromptSet.model_validate(
        yaml.safe_load((ROOT / "conf/base/prompts/teacher_base.yml").read_text())
    )
    rules = {"min_words": 50, "max_words": 150, "max_paragraphs": 2}
    return [
        render(prompts, "draft", str(i), {"product": r.input_text, "audience": r.audience,
                                          "rules": rules}, {}).prompt
        for i, r in enumerate(frame.itertuples())
    ], prompts.stop  # fmt: skip


def run_plain(model, tokenizer, prompts, batch_size, settings, timer):
    stats = {"tokenise": 0.0, "generate": 0.0, "prefill": 0.0, "decode": 0.0, "tokens": 0}
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        t0 = time.perf_counter()
        enc = tokenizer(batch, return_tensors="pt", padding=True)
        t1 = time.perf_counter()
        timer.calls.clear()
        with torch.inference_mode():
            out = model.generate(
                **enc, max_new_tokens=settings.max_new_tokens, do_sample=False,
                stop_strings=settings.stop, tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None,
            )  # fmt: skip
        t2 = time.perf_counter()
        new = out[:, enc["input_ids"].shape[1] :]
        stats["tokens"] += int((new != tokenizer.pad_token_id).sum())
        stats["tokenise"] += t1 - t0
        stats["generate"] += t2 - t1
        stats["prefill"] += timer.calls[0]
        stats["decode"] += sum(timer.calls[1:])
    return stats


def run_pipeline(backend, requests, timer):
    stats = {"tokenise": 0.0, "generate": 0.0, "prefill": 0.0, "decode": 0.0, "tokens": 0}
    t0 = time.perf_counter()
    ids = backend._tokenise(requests)
    batches = list(backend._batches(requests, ids))  # length-sorted
    stats["tokenise"] = time.perf_counter() - t0
    prefix_len = backend.shared_prefix(ids)
    timer.calls.clear()
    t1 = time.perf_counter()
    state = backend._prefix_state(ids[0][:prefix_len]) if prefix_len else None
    stats["generate"] += time.perf_counter() - t1
    stats["prefill"] += sum(timer.calls)  # the shared prefix, once per call
    for batch in batches:
        timer.calls.clear()
        t1 = time.perf_counter()
        results = backend._generate_batch(batch, prefix_len, state)
        stats["generate"] += time.perf_counter() - t1
        stats["prefill"] += timer.calls[0]
        stats["decode"] += sum(timer.calls[1:])
        stats["tokens"] += sum(r.completion_tokens for r in results)
    return stats


def row(system, batch_size, n, stats):
    wall = stats["tokenise"] + stats["generate"]
    forward = stats["prefill"] + stats["decode"]
    return {
        "path": system, "batch": batch_size, "prompts": n,
        "desc/s": n / wall, "gen tok/s": stats["tokens"] / wall,
        "tokenise %": 100 * stats["tokenise"] / wall, "prefill %": 100 * stats["prefill"] / wall,
        "decode %": 100 * stats["decode"] / wall,
        "overhead %": 100 * (stats["generate"] - forward) / wall, "wall s": wall,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="16 prompts, batch 1/16 only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--quantization", default="none", choices=["none", "int8", "nf4"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    models = ModelsParams.model_validate(load_project_params()["models"])
    model_dir = resolve_model_dir(models.teacher, ROOT / models.cache_dir)
    sizes = [1, 16] if args.quick else args.sizes
    n = 16 if args.quick else 64
    prompts, stop = draft_prompts(n)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, stop=stop)
    backend = TransformersBackend(
        model_dir, settings, dtype=args.dtype, threads=args.threads, quantization=args.quantization
    )
    timer = ForwardTimer(backend.model)
    from product_descgen.llm.types import Request

    rows = []
    for batch_size in sizes:
        count = min(n, max(4, batch_size * 2)) if batch_size < 4 else n  # batch 1 is slow
        backend.batch_size = batch_size
        run_pipeline(backend, [Request(key="w", prompt=prompts[0])], timer)  # warm-up
        plain = run_plain(backend.model, backend.tokenizer, prompts[:count], batch_size,
                          settings, timer)  # fmt: skip
        rows.append(row("plain", batch_size, count, plain))
        requests = [Request(key=str(i), prompt=p) for i, p in enumerate(prompts[:count])]
        rows.append(row("pipeline", batch_size, count, run_pipeline(backend, requests, timer)))
        logger.info("%s\n%s", rows[-2], rows[-1])
    table = pd.DataFrame(rows).round(1)
    text = table.to_markdown(index=False)
    print(text)  # noqa: T201 - the benchmark's report
    if not args.quick:
        write_section(text, args, model_dir)


def write_section(table: str, args: argparse.Namespace, model_dir: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    served = "" if args.quantization == "none" else f", {args.quantization}"
    header = f"## Teacher throughput ({args.dtype}{served})"
    command = "benchmarks/teacher_throughput.py" + (
        f" --quantization {args.quantization} --sizes {' '.join(map(str, args.sizes))}"
        if args.quantization != "none" else ""
    )  # fmt: skip
    body = (
        f"{header}\n\n"
        f"`.venv/bin/python {command}` on {platform.processor() or 'CPU'}"
        f" ({os.cpu_count()} cores), {args.threads} torch threads, {args.dtype}{served}, greedy,"
        f" up to {args.max_new_tokens} new tokens, real draft prompts (demo catalogue,"
        f" teacher_base.yml), model `{Path(model_dir).name}`, {time.strftime('%Y-%m-%d')}."
        f"\n\n{table}\n"
    )
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if header in text:
        before, _, rest = text.partition(header)
        after = rest.split("\n## ", 1)
        text = before + body + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + body
    doc.write_text(text)


if __name__ == "__main__":
    main()
