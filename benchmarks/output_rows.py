"""The output layer's time by number of rows, as computed plain and as a 16-row block.

    .venv/bin/python benchmarks/output_rows.py           # prints a markdown table
    .venv/bin/python benchmarks/output_rows.py --cold    # each call after a pass over 512 MB

The output layers of the default teacher (Gemma 3 270M: 262,144 x 640) and student (SmolLM2-135M:
49,152 x 576), float32, random weights (timing does not depend on them), 2 threads. A decode
step multiplies one row per sequence in flight; ``llm/output_rows.py`` computes the counts where
the block is faster as the block, chosen in the decode loop from its own calls. ``--cold``
shows why not from calls like these at load: timed back to back, the student's 113 MB layer
stays in this CPU's 260 MB last-level cache; in a decode step the other layers' weights and
the KV cache pass through it in between, which ``--cold`` imitates.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from product_descgen.llm.output_rows import BLOCK

LAYERS = {"teacher 262144x640": (262_144, 640), "student 49152x576": (49_152, 576)}


def best_ms(fn, x: torch.Tensor, weight: torch.Tensor, repeats: int, flush=None) -> float:
    fn(x, weight)
    times = []
    for _ in range(repeats):
        if flush is not None:
            flush.add_(1.0)  # a pass over memory larger than the cache
        start = time.perf_counter()
        fn(x, weight)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[1, 2, 4, 6, 8, 10, 12, 14, 16, 24, 32]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="a 512 MB pass before each call")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    flush = torch.zeros(512 * 2**20 // 4) if args.cold else None
    records = []
    with torch.inference_mode():
        for name, (out_features, in_features) in LAYERS.items():
            weight = torch.randn(out_features, in_features) * 0.02
            block = torch.zeros(BLOCK, in_features)
            padded = best_ms(torch.nn.functional.linear, block, weight, args.repeats, flush)
            for rows in args.rows:
                x = torch.randn(rows, in_features)
                plain = best_ms(torch.nn.functional.linear, x, weight, args.repeats, flush)
                records.append({
                    "layer": name, "rows": rows, "plain ms": plain,
                    f"as {BLOCK} rows ms": padded if rows < BLOCK else None,
                })  # fmt: skip
    print(pd.DataFrame(records).round(1).to_markdown(index=False))  # noqa: T201 - the report


if __name__ == "__main__":
    main()
