import pandas as pd
import pytest

from product_descgen.prep.split import allocate, coverage_report, stratified_split

SHARES = {"train": 0.8, "validation": 0.1, "test": 0.1}


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (10, {"train": 8, "validation": 1, "test": 1}),
        (1, {"train": 1, "validation": 0, "test": 0}),
        (2, {"train": 2, "validation": 0, "test": 0}),
        (15, {"train": 11, "validation": 2, "test": 2}),
        (0, {"train": 0, "validation": 0, "test": 0}),
    ],
)
def test_allocate_single_group(n, expected):
    assert allocate([n], SHARES) == [expected]


def test_allocate_keeps_overall_shares_over_many_small_groups():
    sizes = [5, 6, 5, 5, 7, 5, 6, 5, 5, 5, 8, 15, 15, 15]  # like the demo catalogue
    counts = allocate(sizes, SHARES)
    assert [sum(c.values()) for c in counts] == sizes
    totals = {s: sum(c[s] for c in counts) for s in SHARES}
    assert totals == {"train": 85, "validation": 11, "test": 11}  # 107 items: 85.6/10.7/10.7
    assert all(c["train"] >= 1 for c in counts)


def test_allocate_never_leaves_train_empty():
    assert allocate([1], {"train": 0.2, "validation": 0.4, "test": 0.4}) == [
        {"train": 1, "validation": 0, "test": 0}
    ]


def _frame(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [
        {"product_id": f"{cat}-{i}", "category": cat} for cat, n in sizes.items() for i in range(n)
    ]
    return pd.DataFrame(rows)


def test_stratified_split_is_seeded_deterministic_and_stratified():
    frame = _frame({"A": 50, "B": 30, "C": 20})
    first = stratified_split(frame, SHARES, seed=7)
    again = stratified_split(frame.sample(frac=1, random_state=1), SHARES, seed=7)
    assert first.set_index("product_id")["split"].to_dict() == (
        again.set_index("product_id")["split"].to_dict()
    )
    counts = first.groupby(["category", "split"]).size().unstack(fill_value=0)
    assert counts.loc["A"].to_dict() == {"test": 5, "train": 40, "validation": 5}
    assert counts.loc["C"].to_dict() == {"test": 2, "train": 16, "validation": 2}
    assert counts.loc["B"].to_dict() == {"test": 3, "train": 24, "validation": 3}
    other_seed = stratified_split(frame, SHARES, seed=8)
    assert not first["split"].equals(other_seed["split"])


def test_stratified_split_does_not_mutate_and_keeps_every_row():
    frame = _frame({"A": 7, "tiny": 1})
    before = frame.copy()
    out = stratified_split(frame, SHARES, seed=0)
    pd.testing.assert_frame_equal(frame, before)
    assert len(out) == len(frame) and out["split"].notna().all()


def test_coverage_report_lists_small_categories():
    out = stratified_split(_frame({"A": 20, "tiny": 1}), SHARES, seed=0)
    assert coverage_report(out) == {
        "missing_from_validation": ["tiny"],
        "missing_from_test": ["tiny"],
    }
