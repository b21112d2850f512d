"""Teacher throughput on this machine: descriptions/s and generated tokens/s by batch size.

    .venv/bin/python benchmarks/teacher_throughput.py            # prints the table
    .venv/bin/python benchmarks/teacher_throughput.py --write-docs   # and sets it in docs/
    .venv/bin/python benchmarks/teacher_throughput.py --quick    # fewer prompts
    .venv/bin/python benchmarks/teacher_throughput.py --quantization int8 --sizes 16 32

Side by side in one run, on the same real draft prompts (demo catalogue, teacher_base.yml):
* ``plain``: one ``model.generate`` per batch in input order (the naive baseline);
* ``generate+prefix``: length-sorted batches and the shared prompt prefix computed once,
  then ``model.generate`` over a copy of its cache (the project's path until 2026-11-26);
* ``pipeline``: the project's ``TransformersBackend`` as teacher_generation runs it: the same
  sorting and prefix cache, then continuous batching in its own decode loop
  (``llm/decoding.py``: preallocated KV cache, a finished row's slot refilled at once);
* ``pipeline, float32 head`` (``--paths``): the pipeline choosing each greedy token from the
  float32 output layer (no float16 screen, ``llm/screen.py``; the same tokens);
* ``pipeline, plain head`` (``--paths``): that, with the output layer computed at every
  row count as it comes (no 16-row blocks at slow counts, ``llm/output_rows.py``);
* ``pipeline, library forward`` (``--paths``): the pipeline with transformers' own forward
  pass instead of ``llm/lean.py`` (prompts with their padding, fresh tensors; float32 head);
* ``generate_batch`` (``--continuous``): transformers' own continuous batching (paged
  attention), full prompts (it has no cached-prefix input).
Time is split into tokenisation, prefill (forward passes over prompts), decode (one-token
forward passes) and the rest (Python overhead: logits processing, stopping criteria, cache
bookkeeping, admissions), measured with forward hooks. Batch size = rows in flight.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from product_descgen.llm import lean  # noqa: E402
from product_descgen.llm.hf_backend import TransformersBackend  # noqa: E402
from product_descgen.llm.output_rows import RowChoice  # noqa: E402
from product_descgen.llm.prompts import PromptSet, render  # noqa: E402
from product_descgen.llm.screen import ScreenedHead  # noqa: E402
from product_descgen.llm.types import GenerationSettings  # noqa: E402
from product_descgen.models import ModelsParams, resolve_model_dir  # noqa: E402
from product_descgen.project_config import load_project_params  # noqa: E402

logger = logging.getLogger("benchmark")


DEFAULT_PATHS = ["plain", "generate+prefix", "pipeline"]


class ForwardTimer:
    """Times every forward pass of the model, the library's (forward hooks) or the pipeline's
    own (``lean.forward``, wrapped): passes over more than one new token per row are prefill
    (prompts), single-token passes are decode steps. The output layer's float16 screen and
    float32 candidates (``llm/screen.py``, run after ``lean.forward`` returns its input) count
    with the pass whose output they take."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.prefill: list[float] = []
        self.decode: list[float] = []
        self._start, self._tokens = 0.0, 0
        self._last = self.decode
        model.register_forward_pre_hook(self._pre, with_kwargs=True)
        model.register_forward_hook(self._post)
        forward = lean.forward

        def timed(model, ids, *args, **kwargs):  # noqa: ANN001, ANN202
            self._pre(None, (ids,), {})
            try:
                return forward(model, ids, *args, **kwargs)
            finally:
                self._post()

        lean.forward = timed
        for name in ("approximate", "choose"):
            method = getattr(ScreenedHead, name)

            def timed_head(head, *args, _method=method):  # noqa: ANN001, ANN202
                start = time.perf_counter()
                try:
                    return _method(head, *args)
                finally:
                    self._last[-1] += time.perf_counter() - start

            setattr(ScreenedHead, name, timed_head)

    def clear(self) -> None:
        self.prefill.clear()
        self.decode.clear()

    def _pre(self, _module, args, kwargs) -> None:  # noqa: ANN001
        ids = kwargs.get("input_ids", args[0] if args else None)
        self._tokens = ids.shape[1] if ids is not None else 1
        self._start = time.perf_counter()

    def _post(self, *_: object) -> None:
        elapsed = time.perf_counter() - self._start
        self._last = self.prefill if self._tokens > 1 else self.decode
        self._last.append(elapsed)


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
    timer.clear()
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        t0 = time.perf_counter()
        enc = tokenizer(batch, return_tensors="pt", padding=True)
        t1 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **enc, max_new_tokens=settings.max_new_tokens, do_sample=False,
                repetition_penalty=settings.repetition_penalty,
                stop_strings=settings.stop, tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None,
            )  # fmt: skip
        t2 = time.perf_counter()
        new = out[:, enc["input_ids"].shape[1] :]
        stats["tokens"] += int((new != tokenizer.pad_token_id).sum())
        stats["tokenise"] += t1 - t0
        stats["generate"] += t2 - t1
    return {**stats, "prefill": sum(timer.prefill), "decode": sum(timer.decode)}


def run_generate_prefix(backend, requests, timer):
    """Length-sorted batches, the prefix cached once, ``model.generate`` per batch."""
    stats = {"tokenise": 0.0, "generate": 0.0, "tokens": 0}
    timer.clear()
    t0 = time.perf_counter()
    ids = backend._tokenise(requests)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    stats["tokenise"] = time.perf_counter() - t0
    prefix = ids[0][: backend.shared_prefix(ids)]
    t1 = time.perf_counter()
    state = prefix_state(backend.model, prefix)
    for start in range(0, len(order), backend.batch_size):
        batch = [ids[i] for i in order[start : start + backend.batch_size]]
        stats["tokens"] += generate_over_prefix(backend, batch, prefix, state)
    stats["generate"] = time.perf_counter() - t1
    return {**stats, "prefill": sum(timer.prefill), "decode": sum(timer.decode)}


def run_pipeline(backend, requests, timer):
    """The project's path: ``TransformersBackend.generate`` (continuous batching)."""
    timer.clear()
    t0 = time.perf_counter()
    backend._tokenise(requests)  # timed alone here; generate tokenises again (counted there)
    tokenise = time.perf_counter() - t0
    t1 = time.perf_counter()
    tokens = sum(r.completion_tokens for chunk in backend.generate(requests) for r in chunk)
    generate = time.perf_counter() - t1 - tokenise
    return {"tokenise": tokenise, "generate": generate, "tokens": tokens,
            "prefill": sum(timer.prefill), "decode": sum(timer.decode)}  # fmt: skip


def run_pipeline_plain_head(backend, requests, timer):
    """The pipeline with every row count through the plain output layer (no 16-row blocks,
    ``llm/output_rows.py``), for comparison."""
    layer = backend.model.get_output_embeddings()
    choice = getattr(layer, "row_choice", None)
    layer.row_choice = RowChoice(fixed=False)
    try:
        return run_pipeline_float32_head(backend, requests, timer)
    finally:
        layer.row_choice = choice


def run_pipeline_float32_head(backend, requests, timer):
    """The pipeline with the float32 output layer for every greedy choice (no float16
    screen, ``llm/screen.py``), for comparison."""
    with mock.patch.object(backend.decoder(), "screen", None):
        return run_pipeline(backend, requests, timer)


def run_pipeline_library_forward(backend, requests, timer):
    """The pipeline with transformers' forward pass (``llm/lean.py`` off), for comparison."""
    with mock.patch.object(backend.decoder(), "lean", False):
        return run_pipeline(backend, requests, timer)


def run_continuous(backend, requests, timer):
    """transformers' own continuous batching (``generate_batch``, paged attention)."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    timer.clear()
    s = backend.settings
    t0 = time.perf_counter()
    ids = backend._tokenise(requests)
    tokenise = time.perf_counter() - t0
    config = GenerationConfig(
        max_new_tokens=s.max_new_tokens, do_sample=False, repetition_penalty=s.repetition_penalty,
        eos_token_id=backend.model.generation_config.eos_token_id,
        pad_token_id=backend.tokenizer.pad_token_id,
    )  # fmt: skip
    t1 = time.perf_counter()
    outputs = backend.model.generate_batch(
        inputs=ids, generation_config=config,
        continuous_batching_config=ContinuousBatchingConfig(
            max_requests_per_batch=backend.batch_size
        ),
    )  # fmt: skip
    generate = time.perf_counter() - t1
    tokens = sum(len(o.generated_tokens) for o in outputs.values())
    return {"tokenise": tokenise, "generate": generate, "tokens": tokens,
            "prefill": sum(timer.prefill), "decode": sum(timer.decode)}  # fmt: skip


def prefix_state(model, prefix):
    if not prefix:
        return None
    with torch.inference_mode():
        return model(torch.tensor([prefix]), use_cache=True).cache


def generate_over_prefix(backend, batch, prefix, state) -> int:
    """``model.generate`` on ``[prefix | padding | suffix]`` rows over a copied prefix cache;
    returns the number of tokens generated before EOS/padding."""
    pad, s = backend.tokenizer.pad_token_id, backend.settings
    suffixes = [ids[len(prefix) :] for ids in batch]
    width = max(len(x) for x in suffixes)
    rows = [prefix + [pad] * (width - len(x)) + x for x in suffixes]
    mask = [[1] * len(prefix) + [0] * (width - len(x)) + [1] * len(x) for x in suffixes]
    kwargs = {}
    if state is not None:
        kwargs["cache"] = copy.deepcopy(state)
        kwargs["cache"].batch_repeat_interleave(len(batch))
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=torch.tensor(rows), attention_mask=torch.tensor(mask),
            max_new_tokens=s.max_new_tokens, do_sample=False,
            repetition_penalty=s.repetition_penalty, stop_strings=s.stop or None,
            tokenizer=backend.tokenizer, pad_token_id=pad, temperature=None, top_p=None,
            top_k=None, **kwargs,
        )[:, len(rows[0]) :]  # fmt: skip
    eos = backend.model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos]) | {pad}
    return sum(next((i for i, t in enumerate(r) if t in eos), len(r)) for r in out.tolist())


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
    parser.add_argument(
        "--write-docs", action="store_true",
        help="replace its section of docs/benchmarks.md, notes included, with this run",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--continuous", action="store_true",
        help="also time transformers' own continuous batching (generate_batch)",
    )  # fmt: skip
    parser.add_argument(
        "--as-configured", action="store_true",
        help="the draft step's settings from parameters_teacher_generation.yml (caps, penalty)",
    )  # fmt: skip
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--quantization", default="none", choices=["none", "int8", "nf4"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument(
        "--paths", nargs="+", default=DEFAULT_PATHS,
        choices=["plain", "generate+prefix", "pipeline", "pipeline, float32 head",
                 "pipeline, plain head", "pipeline, library forward"],
        help="which paths to time ('pipeline, plain head': the float32 head without blocks)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    params = load_project_params()
    models = ModelsParams.model_validate(params["models"])
    model_dir = resolve_model_dir(models.teacher, ROOT / models.cache_dir)
    sizes = [1, 16] if args.quick else args.sizes
    n = 16 if args.quick else 64
    prompts, stop = draft_prompts(n)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, stop=stop)
    if args.as_configured:
        draft = params["teacher_generation"]["draft"]
        settings = GenerationSettings(**{**draft, "stop": [*stop, *draft.get("stop", [])]})
        args.max_new_tokens = settings.max_new_tokens
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
        requests = [Request(key=str(i), prompt=p) for i, p in enumerate(prompts[:count])]
        plain = (backend.model, backend.tokenizer, prompts[:count], batch_size, settings, timer)
        paths = [
            ("plain", run_plain, plain),
            ("generate+prefix", run_generate_prefix, (backend, requests, timer)),
            ("pipeline", run_pipeline, (backend, requests, timer)),
            ("pipeline, float32 head", run_pipeline_float32_head, (backend, requests, timer)),
            ("pipeline, plain head", run_pipeline_plain_head, (backend, requests, timer)),
            ("pipeline, library forward", run_pipeline_library_forward, (backend, requests, timer)),
        ]
        paths = [p for p in paths if p[0] in args.paths]
        if args.continuous:
            paths.append(("generate_batch", run_continuous, (backend, requests, timer)))
        for name, path, path_args in paths:
            rows.append(row(name, batch_size, count, path(*path_args)))
            logger.info("%s", rows[-1])
    table = pd.DataFrame(rows).round(1)
    text = table.to_markdown(index=False)
    print(text)  # noqa: T201 - the benchmark's report
    if args.write_docs and not args.quick:
        write_section(text, args, model_dir)


def write_section(table: str, args: argparse.Namespace, model_dir: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    served = "" if args.quantization == "none" else f", {args.quantization}"
    configured = ", draft settings as configured" if args.as_configured else ""
    header = f"## Teacher throughput ({args.dtype}{served}{configured})"
    command = "benchmarks/teacher_throughput.py" + (
        f" --quantization {args.quantization}" if args.quantization != "none" else ""
    ) + (" --as-configured" if args.as_configured else "") + (
        f" --sizes {' '.join(map(str, args.sizes))}" if args.sizes != [1, 4, 8, 16, 32] else ""
    ) + (
        f" --paths {shlex.join(args.paths)}" if args.paths != DEFAULT_PATHS else ""
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
    if header in text:  # the command line and the table replaced, the notes after them kept
        before, _, rest = text.partition(header)
        section, _, later = rest.partition("\n## ")
        lines = section.split("\n")
        start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
        end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), start)
        notes = "\n".join(lines[end:]).strip("\n")  # after the first table: older tables too
        text = before + body + (f"\n{notes}\n" if notes else "")
        text += "\n## " + later if later else ""
    else:
        text = text.rstrip() + "\n\n" + body
    doc.write_text(text)


if __name__ == "__main__":
    main()
