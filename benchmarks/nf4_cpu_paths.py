"""The two ways bitsandbytes runs an nf4 layer on CPU, by the number of rows in a call.

    .venv/bin/python benchmarks/nf4_cpu_paths.py            # prints a markdown table

``packed``: bitsandbytes' CPU kernel on its repacked weight (bf16 activations), what it uses
for every inference call on an AVX512-BF16 CPU. ``dequantise``: dequantise the 4-bit weight,
then a float32 matmul (bitsandbytes' path elsewhere, and in training). ``unpack + dequantise``:
the same from the packed weight, after undoing the packing's nibble shuffle
(``nf4_cpu.unpack``): what the project's prompt path does, as it keeps only the packed copy.
``float32``: the dense
layer, for scale. Layer shapes are SmolLM2-135M's; random weights (timing does not depend on
them). ``product_descgen.llm.nf4_cpu`` picks the path per call from these figures.
"""

from __future__ import annotations

import argparse
import copy
import time

import pandas as pd
import torch


def timed(fn, repeat: int) -> float:
    """Mean microseconds per call, after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def measure_layer(in_features: int, out_features: int, rows: list[int], repeat: int) -> list:
    """One layer shape: microseconds per call of each path, for each number of rows."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import _convert_weight_packed_for_cpu, dequantize_4bit

    from product_descgen.llm.nf4_cpu import unpack

    dense = torch.nn.Linear(in_features, out_features, bias=False)
    weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False).to("cpu")
    packed, state = _convert_weight_packed_for_cpu(
        weight.data.clone(), copy.deepcopy(weight.quant_state)
    )
    paths = {
        "packed us": lambda x: bnb.matmul_4bit(x, packed, quant_state=state),
        "dequantise us": lambda x: torch.nn.functional.linear(
            x, dequantize_4bit(weight.data, weight.quant_state)
        ),
        "unpack + dequantise us": lambda x: torch.nn.functional.linear(
            x, dequantize_4bit(unpack(packed, (out_features, in_features)), weight.quant_state)
        ),
        "float32 us": dense,
    }
    records = []
    with torch.inference_mode():
        for n in rows:
            x = torch.randn(n, in_features)
            times = max(2, repeat * 12 // max(n, 12))
            record = {"layer": f"{in_features}->{out_features}", "rows": n}
            for name, path in paths.items():
                record[name] = timed(lambda path=path, x=x: path(x), times)
            records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 4, 12, 16, 32, 64, 128, 1560])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = []
    for out_features, in_features in [(576, 576), (1536, 576), (576, 1536)]:
        records += measure_layer(in_features, out_features, args.rows, args.repeat)
    table = pd.DataFrame(records).round(0).to_markdown(index=False)
    print(table)  # noqa: T201 - the benchmark's report


if __name__ == "__main__":
    main()
