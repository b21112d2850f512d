"""Seeded, deterministic train/validation/test split, stratified by category."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")
_HELD_OUT = ("validation", "test")


def apportion(sizes: list[int], total: int) -> list[int]:
    """At most ``total`` items taken from parts of ``sizes`` in proportion (largest remainders),
    each non-empty part keeping at least one where ``total`` allows: counts summing to
    ``min(total, sum(sizes))`` exactly, so a cap on paid calls is never exceeded."""
    whole = sum(sizes)
    if total >= whole:
        return list(sizes)
    quotas = [size * total / whole for size in sizes]
    counts = [
        min(size, max(math.floor(q), 1 if size else 0))
        for size, q in zip(sizes, quotas, strict=True)
    ]
    while sum(counts) > total:  # the minimums went over: from a part with more than one first
        spare = [i for i in range(len(sizes)) if counts[i] > 1] or [
            i for i in range(len(sizes)) if counts[i]
        ]
        counts[max(spare, key=lambda i: counts[i] - quotas[i])] -= 1
    while sum(counts) < total:
        open_parts = [i for i in range(len(sizes)) if counts[i] < sizes[i]]
        counts[max(open_parts, key=lambda i: quotas[i] - counts[i])] += 1
    return counts


def allocate(sizes: list[int], shares: dict[str, float]) -> list[dict[str, int]]:
    """Split counts for groups of the given sizes, processed in order.

    Held-out counts follow the *cumulative* targets (round(running total x share)), so rounding
    errors do not pile up over many small categories: overall shares stay within one item of
    the configured ones. A group never loses its last item to held-out splits (a category is
    never left without training data); :func:`coverage_report` lists what such groups miss.
    """
    seen = 0
    given = dict.fromkeys(_HELD_OUT, 0)
    out = []
    for n in sizes:
        seen += n
        counts = {s: math.floor(seen * shares[s] + 0.5) - given[s] for s in _HELD_OUT}
        while n and counts["validation"] + counts["test"] > n - 1:
            counts[max(_HELD_OUT, key=lambda s: (counts[s], s == "validation"))] -= 1
        for s in _HELD_OUT:
            given[s] += counts[s]
        out.append({"train": n - counts["validation"] - counts["test"], **counts})
    return out


def stratified_split(
    frame: pd.DataFrame, shares: dict[str, float], seed: int, by: str = "category"
) -> pd.DataFrame:
    """A copy of ``frame`` with a ``split`` column; same input and seed, same split."""
    rng = np.random.default_rng(seed)
    labels = pd.Series(index=frame.index, dtype="object")
    groups = [g for _, g in frame.sort_values([by, "product_id"]).groupby(by, sort=True)]
    for group, counts in zip(groups, allocate([len(g) for g in groups], shares), strict=True):
        order = group.index.to_numpy()[rng.permutation(len(group))]
        start = 0
        for name in SPLITS:
            labels.loc[order[start : start + counts[name]]] = name
            start += counts[name]
    return frame.assign(split=labels)


def coverage_report(split_frame: pd.DataFrame, by: str = "category") -> dict[str, list[str]]:
    """Categories present in train but missing from validation or test."""
    present = {name: set(split_frame.loc[split_frame["split"] == name, by]) for name in SPLITS}
    return {f"missing_from_{name}": sorted(present["train"] - present[name]) for name in _HELD_OUT}
