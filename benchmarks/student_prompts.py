"""The student's prompt pass (prefill) three ways, side by side in one process.

    .venv/bin/python benchmarks/student_prompts.py      # after a finetune run; prints a table

The speed test's own student job (its test products, its serving: nf4 base + adapter), the
prompts of one batch as the decode loop admits them, through ``Decoder._prefill``:

* ``library``: transformers' Llama forward, column chunks of the padded batch;
* ``lean, padded``: ``llm/lean.py`` on the same column chunks, padding included;
* ``lean, packed``: the decode loop's path: each chunk's real tokens only, written into
  buffers reused by every chunk and layer (``llm/scratch.py``).

With glibc's mmap threshold fixed as in the speed workers (``--threshold default`` for glibc's
own): seconds (median of ``--repeats``, the three ways interleaved), minor page faults, and
the largest difference of the last position's logits from the library's.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import time

import pandas as pd
import torch
from speed_setup import load_speed_jobs

from product_descgen.evaluation.inference import student_requests
from product_descgen.evaluation.speed import release_freed_memory
from product_descgen.llm.backends import make_backend

WAYS = {"library": (False, False), "lean, padded": (True, False), "lean, packed": (True, True)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threshold", default="128K", choices=["128K", "default"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    release_freed_memory(128 * 1024 if args.threshold == "128K" else None)
    _, _, job = load_speed_jobs()
    backend = make_backend(job.connection, job.model_dir, job.generation, adapter=job.adapter)
    requests = student_requests(pd.DataFrame(job.items), job.template or "")
    ids = backend._tokenise(requests)[: backend.batch_size]
    ids.sort(key=len, reverse=True)  # as the decode loop admits them
    decoder = backend.decoder()
    decoder.screen = None  # logits from every way (the screened layer takes its input)
    pad = backend.tokenizer.pad_token_id or 0
    times = {way: [] for way in WAYS}
    faults, logits = {}, {}
    for _ in range(args.repeats):
        for way, (lean, pack) in WAYS.items():
            decoder.lean, decoder.pack = lean, pack
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            with torch.inference_mode():
                logits[way] = decoder._prefill(ids, pad, [], None, 0)[-1]
            times[way].append(time.perf_counter() - start)
            faults[way] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    tokens = sum(len(row) for row in ids)
    rows = [{
        "way": way,
        "seconds": round(statistics.median(times[way]), 2),
        "prompt tok/s": round(tokens / statistics.median(times[way])),
        "page faults": faults[way],
        "max logit diff": f"{float((logits[way] - logits['library']).abs().max()):.1e}",
    } for way in WAYS]  # fmt: skip
    width = max(len(row) for row in ids)
    print(  # noqa: T201 - the report
        f"{len(ids)} prompts, {tokens} tokens ({len(ids) * width} with padding), "
        f"glibc mmap threshold {args.threshold}, {torch.get_num_threads()} threads\n"
    )
    print(pd.DataFrame(rows).to_markdown(index=False))  # noqa: T201 - the report


if __name__ == "__main__":
    main()
