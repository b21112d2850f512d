"""Slow row counts of the output layer are computed as a larger block, with the same result."""

from __future__ import annotations

import pytest
import torch

from product_descgen.llm import output_rows
from product_descgen.llm.output_rows import BLOCK, pad_slow_row_counts


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(32, 100)

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.head


def test_only_measured_slow_counts_are_padded(monkeypatch):
    # a BLAS that is slow at 5 and 12 rows: those two, and only those, get padded
    timings = {5: 3.0, 12: 2.0, BLOCK: 1.0}
    monkeypatch.setattr(
        output_rows, "_seconds", lambda layer, rows, repeats=2: timings.get(rows, 1.0)
    )
    model = Tiny()
    assert pad_slow_row_counts(model, max_rows=32) == {5, 12}
    assert pad_slow_row_counts(Tiny(), max_rows=8) == {5}  # no count above the batch


@pytest.mark.parametrize("rows", [1, 5, 12, BLOCK, 20])
def test_padded_or_not_the_rows_get_the_plain_layers_output(monkeypatch, rows):
    monkeypatch.setattr(
        output_rows, "_seconds", lambda layer, n, repeats=2: 1.0 if n == BLOCK else 2.0
    )
    model = Tiny()
    plain = torch.nn.Linear(32, 100)
    plain.load_state_dict(model.head.state_dict())
    assert pad_slow_row_counts(model, max_rows=32) == set(range(2, BLOCK))
    x = torch.randn(rows, 1, 32)
    with torch.inference_mode():
        got = model.head(x)
        assert got.shape == (rows, 1, 100)
        torch.testing.assert_close(got, plain(x), rtol=1e-5, atol=1e-5)


def test_layers_it_cannot_handle_are_left_alone():
    model = Tiny()
    model.head = torch.nn.Identity()  # not a Linear (e.g. a quantised output layer)
    assert pad_slow_row_counts(model, max_rows=32) == set()


def test_a_real_timing_run_picks_counts_below_the_block():
    counts = pad_slow_row_counts(Tiny(), max_rows=32)
    assert counts <= set(range(2, BLOCK))
