"""Attention over a shared prompt prefix, its keys and values read once for every row.

Every teacher prompt starts with the same instructions and worked examples (344 tokens of
Gemma 3 270M's ~720-column rows at 32 rows in flight); the decode loop computes their keys
and values once (``decoding.SlotLayer.start``) and keeps them as ``shared``. Attention
splits in two there ("cascade attention"): all rows' queries against the one shared copy, as
one long sequence per key/value head, then each row's queries against its own columns; the
two softmaxes are joined by their log-sum-exps. The same attention as over whole rows up to
float rounding (tested in tests/llm/test_lean.py).

* Decode steps (``decode_step``): each row's copy of the prefix was about half of what a
  teacher step's attention read; a step took 169 against 185 ms at 32 rows (docs/benchmarks.md).
* Prompt chunks (``prompt_chunk``): the prefix part is one large product per key/value head
  over the chunk's real tokens only (no padding), where the whole-row kernel ran each row's
  few columns of queries against its own ~550-column copy.

A row's query heads that share a key/value head are read as that head's queries, in place
(transformers copies the key/value heads per query head first, ``repeat_kv``).
"""

from __future__ import annotations

from typing import Any

import torch

flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu


def _join(
    first: torch.Tensor, first_lse: torch.Tensor, second: torch.Tensor, second_lse: torch.Tensor
) -> torch.Tensor:
    """Two softmax-weighted sums over disjoint keys as the one over all of them (``first``
    and ``second``: ``[..., dim]``; their log-sum-exps ``[...]``), written into ``first``."""
    top = torch.maximum(first_lse, second_lse)
    first_weight, second_weight = (first_lse - top).exp_(), (second_lse - top).exp_()
    out = first.mul_(first_weight[..., None]).add_(second.mul_(second_weight[..., None]))
    return out.div_(first_weight.add_(second_weight)[..., None])


def _prefix(
    attention: Any,
    queries: torch.Tensor,
    ahead: torch.Tensor,
    shared: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of ``queries`` (``[tokens, heads, dim]``) over the shared prefix only
    (``shared``, ``[1, kv heads, P, dim]``; ``ahead``: the additive mask, ``[tokens, P]``):
    every token's query heads of a key/value head as one sequence against the one copy.
    ``[tokens, kv heads, group, dim]`` and its log-sum-exp ``[tokens, kv heads, group]``."""
    keys, values = shared
    tokens, heads, dim = queries.shape
    kv_heads, p = keys.shape[1], keys.shape[2]
    group = heads // kv_heads
    sequence = queries.view(tokens, kv_heads, group, dim).transpose(0, 1)
    sequence = sequence.reshape(1, kv_heads, tokens * group, dim)
    allowed = ahead[:, None].expand(tokens, group, p).reshape(1, 1, tokens * group, p)
    out, lse = flash(sequence, keys, values, 0.0, False, attn_mask=allowed,
                     scale=attention.scaling)  # fmt: skip
    out = out.view(kv_heads, tokens, group, dim).transpose(0, 1)
    return out, lse.view(kv_heads, tokens, group).transpose(0, 1)


def decode_step(
    attention: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    shared: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Attention of one new column per row (``query``: ``[rows, heads, 1, dim]``; ``key``,
    ``value``: each row's whole columns; ``mask`` additive, ``[rows, 1, 1, columns]``) over
    the shared prefix (``shared``, ``[1, kv heads, P, dim]``) and each row's own columns
    after it. Returns ``[rows, kv heads, group, dim]``, as :func:`own`."""
    rows, heads, _, dim = query.shape
    p = shared[0].shape[2]
    first, first_lse = _prefix(attention, query.view(rows, heads, dim), mask[:, 0, 0, :p], shared)
    second, second_lse = own(attention, query, key[:, :, p:], value[:, :, p:], mask[..., p:])
    return _join(first, first_lse, second, second_lse)


def own(
    attention: Any, query: Any, key: Any, value: Any, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of one new column per row over that row's keys and values, and its
    log-sum-exp, grouped heads read in place (the student's decode steps took 60.2 against
    61.7 ms at 12 rows, 22.5 against 23.3 at 1, with transformers' numbers).
    ``[rows, kv heads, group, dim]`` and ``[rows, kv heads, group]``."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    queries = query.view(rows, kv_heads, group, dim)
    allowed = mask.expand(rows, 1, group, mask.shape[-1])
    return flash(queries, key, value, 0.0, False, attn_mask=allowed, scale=attention.scaling)


def prompt_chunk(
    attention: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    shared: tuple[torch.Tensor, torch.Tensor],
    places: torch.Tensor,
) -> torch.Tensor:
    """Attention of a prompt chunk (``query``: ``[rows, heads, columns, dim]``, the padded
    grid; ``key``, ``value``: each row's whole columns; ``mask`` additive, ``[rows, 1,
    columns, all columns]``) for its real tokens (``places``: where in the flattened grid),
    ``[tokens, heads * dim]``."""
    rows, heads, columns, dim = query.shape
    kv_heads, p = shared[0].shape[1], shared[0].shape[2]
    group, tokens = heads // kv_heads, places.numel()
    # the prefix, for the real tokens only
    real = query.transpose(1, 2).reshape(rows * columns, heads, dim).index_select(0, places)
    ahead = mask[:, 0, :, :p].reshape(rows * columns, p).index_select(0, places)
    first, first_lse = _prefix(attention, real, ahead, shared)
    # each row's own columns: a key/value head's queries ordered (column, group)
    grid = query.transpose(1, 2).reshape(rows, columns, kv_heads, group, dim)
    grid = grid.transpose(1, 2).reshape(rows, kv_heads, columns * group, dim)
    span = key.shape[2] - p
    allowed = mask[..., p:].unsqueeze(3).expand(rows, 1, columns, group, span)
    allowed = allowed.reshape(rows, 1, columns * group, span)
    second, second_lse = flash(grid, key[:, :, p:], value[:, :, p:], 0.0, False,
                               attn_mask=allowed, scale=attention.scaling)  # fmt: skip
    second = second.view(rows, kv_heads, columns, group, dim).transpose(1, 2)
    second = second.reshape(rows * columns, kv_heads, group, dim).index_select(0, places)
    second_lse = second_lse.view(rows, kv_heads, columns, group).transpose(1, 2)
    second_lse = second_lse.reshape(rows * columns, kv_heads, group).index_select(0, places)
    return _join(first, first_lse, second, second_lse).reshape(tokens, heads * dim)
