"""The in-place repetition penalty gives transformers' numbers; greedy picks as argmax."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from product_descgen.llm.logits import RepetitionPenaltyInPlace, greedy


def test_the_penalty_matches_the_library_and_writes_in_place():
    torch.manual_seed(0)
    scores = torch.randn(4, 50) * 3  # positive and negative scores
    ids = torch.randint(0, 50, (4, 30))  # with repeats: a token penalised once, not twice
    expected = RepetitionPenaltyLogitsProcessor(1.3)(ids, scores.clone())
    got = RepetitionPenaltyInPlace(1.3)(ids, scores)
    assert torch.equal(got, expected)
    assert got.data_ptr() == scores.data_ptr()  # no copy of the logits


def test_ids_beyond_the_output_vocabulary_go_to_the_library():
    scores, ids = torch.randn(2, 10), torch.tensor([[1, 12], [3, 4]])  # 12: no logit for it
    expected = RepetitionPenaltyLogitsProcessor(2.0)(ids, scores.clone())
    assert torch.equal(RepetitionPenaltyInPlace(2.0)(ids, scores), expected)


def test_greedy_takes_the_first_of_equal_scores_like_argmax():
    scores = torch.tensor([[0.0, 2.0, 2.0, 1.0], [5.0, -1.0, 5.0, 5.0], [-3.0, -2.0, -9.0, -2.0]])
    assert greedy(scores).tolist() == scores.argmax(-1).tolist() == [1, 0, 1]
