"""Attention of a prompt chunk: transformers' sdpa (``repeat_kv`` copies) against
``llm/attention.py`` (PyTorch's kernel with ``enable_gqa``), and of a decode step.

    .venv/bin/python benchmarks/attention_gqa.py     # prints a markdown table

Shapes of the default student (SmolLM2-135M: 9 query heads on 3 key/value heads, dimension 64)
and teacher (Gemma 3 270M: 4 on 1, dimension 256) as the decode loop calls them: a prompt chunk
of about 1,024 tokens over the rows in flight, and a decode step (one query per row). Random
inputs with a padding mask, float32, 2 threads; the best of 20 calls.
"""

from __future__ import annotations

import time

import pandas as pd
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from product_descgen.llm.attention import sdpa_gqa_prompts

# name: (rows, query heads, key/value heads, queries, keys, head dimension)
SHAPES = {
    "student prompt chunk": (12, 9, 3, 85, 226, 64),
    "student decode step": (12, 9, 3, 1, 300, 64),
    "teacher prompt chunk": (32, 4, 1, 32, 600, 256),
    "teacher refill (1 row)": (1, 4, 1, 300, 700, 256),
    "teacher decode step": (32, 4, 1, 1, 700, 256),
}


class Heads(torch.nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.num_key_value_groups, self.is_causal = groups, True


def best_ms(fn, *args, repeats: int = 20) -> float:
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    for name, (batch, heads, kv_heads, queries, keys, dim) in SHAPES.items():
        q = torch.randn(batch, heads, queries, dim)
        k, v = torch.randn(batch, kv_heads, keys, dim), torch.randn(batch, kv_heads, keys, dim)
        mask = torch.zeros(batch, 1, queries, keys)
        mask[:, :, :, : keys // 10] = torch.finfo(torch.float32).min  # left padding
        module = Heads(heads // kv_heads)
        args = (module, q, k, v, mask, 0.0, dim**-0.5)
        same = torch.equal(sdpa_attention_forward(*args)[0], sdpa_gqa_prompts(*args)[0])
        rows.append({
            "call": name,
            "transformers ms": round(best_ms(sdpa_attention_forward, *args), 2),
            "llm/attention.py ms": round(best_ms(sdpa_gqa_prompts, *args), 2),
            "same numbers": same,
        })  # fmt: skip
    print(pd.DataFrame(rows).to_markdown(index=False))  # noqa: T201 - the report


if __name__ == "__main__":
    main()
