"""The output layer chooses, per row count, in its own calls, between the plain product and a
larger block; either way the rows get the plain layer's output."""

from __future__ import annotations

import pytest
import torch

from product_descgen.llm.output_rows import BLOCK, TRIALS, choose_row_blocks


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(32, 100)

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.head


class SlowAt:
    """A clock and a linear for the layer: the product takes 1 s at a block, ``slow`` s at the
    given row counts, 1 s at the others (virtual time, advanced by each product)."""

    def __init__(self, slow: dict[int, float]) -> None:
        self.now, self.slow, self.calls = 0.0, slow, []
        self.linear = torch.nn.functional.linear

    def clock(self) -> float:
        return self.now

    def __call__(self, x, weight, bias=None):
        rows = x.numel() // x.shape[-1]
        self.calls.append(rows)
        self.now += self.slow.get(rows, 1.0)
        return self.linear(x, weight, bias)


@pytest.fixture
def slow_at_5_and_12(monkeypatch):
    fake = SlowAt({5: 3.0, 12: 2.0, 7: 1.05})
    monkeypatch.setattr(torch.nn.functional, "linear", fake)
    return fake


def test_counts_measured_slower_than_the_block_go_as_the_block(slow_at_5_and_12):
    model = Tiny()
    choice = choose_row_blocks(model)
    choice.clock = slow_at_5_and_12.clock
    with torch.inference_mode():
        for rows in (3, 5, 7, 12):
            for _ in range(2 * TRIALS):
                model.head(torch.randn(rows, 32))
    assert choice.chosen == {3: False, 5: True, 7: False, 12: True}  # 7: within the margin
    slow_at_5_and_12.calls.clear()
    with torch.inference_mode():
        for rows in (3, 5, 7, 12, BLOCK, 20):
            model.head(torch.randn(rows, 32))
    assert slow_at_5_and_12.calls == [3, BLOCK, 7, BLOCK, BLOCK, 20]  # decided: no more trials


def test_trials_alternate_plain_and_block(slow_at_5_and_12):
    model = Tiny()
    choose_row_blocks(model).clock = slow_at_5_and_12.clock
    with torch.inference_mode():
        for _ in range(2 * TRIALS):
            model.head(torch.randn(5, 32))
    assert slow_at_5_and_12.calls == [5, BLOCK] * TRIALS


@pytest.mark.parametrize("fixed", [None, True, False])
@pytest.mark.parametrize("rows", [1, 5, 12, BLOCK, 20])
def test_every_way_gives_the_plain_layers_output(rows, fixed):
    model = Tiny()
    plain = torch.nn.Linear(32, 100)
    plain.load_state_dict(model.head.state_dict())
    choose_row_blocks(model, fixed=fixed)
    x = torch.randn(rows, 1, 32)
    with torch.inference_mode():
        for _ in range(2 * TRIALS + 1):  # through the trials and past them
            got = model.head(x)
            assert got.shape == (rows, 1, 100)
            torch.testing.assert_close(got, plain(x), rtol=1e-5, atol=1e-5)


def test_fixed_choices_time_nothing(slow_at_5_and_12):
    model = Tiny()
    choice = choose_row_blocks(model, fixed=False)
    with torch.inference_mode():
        for _ in range(3):
            model.head(torch.randn(12, 32))
    assert slow_at_5_and_12.calls == [12, 12, 12] and not choice.seconds


def test_gradients_take_the_plain_layer(slow_at_5_and_12):
    model = Tiny()
    choose_row_blocks(model, fixed=True)
    model.head(torch.randn(5, 32, requires_grad=True)).sum().backward()
    assert slow_at_5_and_12.calls == [5]
    assert model.head.weight.grad is not None


def test_layers_it_cannot_handle_are_left_alone():
    model = Tiny()
    model.head = torch.nn.Identity()  # not a Linear (e.g. a quantised output layer)
    assert choose_row_blocks(model) is None


def test_a_real_loop_decides_each_count_once_its_trials_are_done():
    model = Tiny()
    choice = choose_row_blocks(model)
    with torch.inference_mode():
        for rows in range(1, BLOCK + 2):
            for _ in range(2 * TRIALS):
                model.head(torch.randn(rows, 32))
    assert set(choice.chosen) == set(range(2, BLOCK))


def test_logits_go_into_one_buffer_only_inside_reuse_logits():
    from product_descgen.llm.output_rows import reuse_logits

    torch.manual_seed(0)
    head = torch.nn.Linear(32, 100, bias=False)
    choose_row_blocks(_With(head))
    x, y = torch.randn(20, 1, 32), torch.randn(4, 1, 32)
    with torch.inference_mode():
        expected_x, expected_y = torch.nn.Linear.forward(head, x), torch.nn.Linear.forward(head, y)
        outside = head(x)
        assert torch.equal(outside, expected_x)
        assert head(x).data_ptr() != outside.data_ptr()  # a new tensor each call
        with reuse_logits():
            first = head(x)
            assert torch.equal(first, expected_x) and first.shape == (20, 1, 100)
            pointer = first.data_ptr()
            second = head(y)  # fewer rows, the same buffer
            assert torch.equal(second, expected_y) and second.data_ptr() == pointer
        assert head(x).data_ptr() != pointer


class _With(torch.nn.Module):
    def __init__(self, head: torch.nn.Linear) -> None:
        super().__init__()
        self.head = head

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.head


def test_an_int8_output_layer_keeps_its_own_product():
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    from product_descgen.llm.output_rows import reuse_logits

    torch.manual_seed(0)
    model = _With(torch.nn.Linear(32, 100, bias=False))
    quantize_(model, Int8WeightOnlyConfig())
    choose_row_blocks(model)
    x = torch.randn(20, 1, 32)
    with torch.inference_mode(), reuse_logits():
        assert torch.equal(model.head(x), torch.nn.Linear.forward(model.head, x))
