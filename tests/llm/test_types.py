import pytest

from product_descgen.llm.types import FailureWatch, GenerationSettings, Result


def results(*errors: str | None) -> list[Result]:
    return [Result(key=str(i), text=None if e else "ok", error=e) for i, e in enumerate(errors)]


def raise_if_systematic(
    rows: list[Result], what: str, min_rows: int = 8, final: bool = True
) -> None:
    FailureWatch(what, min_rows).add(rows, final=final)


def test_most_rows_failing_with_one_error_is_systematic():
    with pytest.raises(RuntimeError, match="gen: 3 of 5 calls failed with: CUDA out of memory"):
        raise_if_systematic(results(*["CUDA out of memory"] * 3, None, None), "gen", min_rows=4)


def test_every_row_failing_is_systematic_however_few():
    with pytest.raises(RuntimeError, match="1 of 1 calls"):
        raise_if_systematic(results("boom"), "gen")


@pytest.mark.parametrize(
    "errors",
    [
        (None, None, None, None),
        ("a", "a", None, None),  # half is not most
        ("a", "b", "c", None, None),  # many rows failing, each its own way
        ("a", None),  # too few rows to call it systematic
    ],
)
def test_per_row_problems_are_not_systematic(errors):
    raise_if_systematic(results(*errors), "gen", min_rows=4)


def test_while_calls_are_ending_a_few_failures_are_not_judged_yet():
    raise_if_systematic(results("boom"), "gen", final=False)  # the first call of many
    with pytest.raises(RuntimeError, match="5 of 8 calls"):
        raise_if_systematic(results(*["boom"] * 5, None, None, None), "gen", final=False)


def test_counts_add_up_over_batches_as_they_arrive():
    watch = FailureWatch("gen", min_rows=4)
    watch.add(results("boom", None))  # 1 of 2: too early to judge
    watch.add(results(None, None))  # 1 of 4: per-row
    with pytest.raises(RuntimeError, match="gen: 4 of 7 calls failed with: boom"):
        watch.add(results("boom", "boom", "boom"))


def test_stop_strings_are_added_after_the_settings_own_and_once():
    settings = GenerationSettings(max_new_tokens=8, stop=["END", "###"])
    merged = settings.with_stop(["###", "\n\n"])
    assert merged.stop == ["END", "###", "\n\n"]
    assert settings.stop == ["END", "###"] and merged.max_new_tokens == 8  # a copy
