import json
import math

import numpy as np
import pandas as pd
import pytest

from product_descgen.evaluation import metrics as m
from product_descgen.quality.checks import GateParams

P = m.MetricsParams(opening_words=2, phrase_words=2, gate=GateParams(min_words=3, max_words=10))


def test_rouge_l_by_hand():
    # LCS 3: P = 3/3, R = 3/4, F = 2 * 1 * 0.75 / 1.75 = 6/7
    assert m.rouge_l("the cat sat", "the cat sat down") == pytest.approx(6 / 7)
    # LCS "a ... mug" = 2: P = 2/5, R = 2/4, F = 0.4 / 0.9 = 4/9
    assert m.rouge_l("A blue mug for tea.", "A white ceramic mug.") == pytest.approx(4 / 9)
    assert m.rouge_l("dog", "cat") == 0.0


def test_chrf_bounds_and_order():
    assert m.chrf("a red cotton shirt", "a red cotton shirt") == pytest.approx(100.0)
    assert m.chrf("abc", "xyz") == 0.0
    ref = "the cat sat down"
    assert m.chrf("the cat sat", ref) > m.chrf("the dog ran", ref) > m.chrf("xyz", ref)


@pytest.mark.slow
def test_embedding_similarity_with_the_shipped_model():
    embedder = m.load_embedder(None)
    ref = "A comfortable red cotton shirt for everyday wear."
    same, para, other = m.embedding_similarity(
        [ref, "A cosy red shirt made of cotton, for daily use.", "Stainless steel kitchen knife."],
        [ref] * 3,
        embedder,
    )
    assert same == pytest.approx(1.0, abs=1e-5)
    assert para > other + 0.2
    assert m.embedding_similarity([], [], embedder) == []


def test_key_attribute_values():
    attrs = {
        "Colour": "Red, Blue",  # one value, not split
        "Shade": "red, blue",  # duplicate once casefolded
        "Material": "Cotton",
        "Pocket": "No",  # ignored
        "Care": "Machine wash cold with like colours only",  # 7 words: free text
    }
    assert m.key_attribute_values(attrs, P) == ["Red, Blue", "Cotton"]
    assert m.key_attribute_values(json.dumps(attrs), P) == ["Red, Blue", "Cotton"]
    assert m.key_attribute_values("{}", P) == []


def test_attribute_coverage():
    # "Slim Fit": "slim" is there but "fit" is not, so it is not mentioned
    text = "A slim RED shirt in soft cotton."
    assert m.attribute_coverage(text, ["Red", "Cotton", "Slim Fit"]) == pytest.approx(2 / 3)
    assert m.attribute_coverage(text, ["red, cotton"]) == 1.0
    assert m.attribute_coverage(text, []) is None


def test_unsupported_claims():
    source = "Bag. Weight: 5 kg. Colour: red. Made of steel."
    text = "A 42 cm red leather bag of 5 kg in stainless steel."
    # 42 cm is reported as the number 42 only; red, 5 kg and steel are supported
    expected = ["material:leather", "material:stainless steel", "number:42"]
    assert m.unsupported_claims(text, source, P) == expected
    assert m.unsupported_claims("A 5 g bag.", source, P) == ["unit:5g"]
    assert m.unsupported_claims("A gold bag.", source, P) == ["material:gold"]  # reported once
    assert m.unsupported_claims("A red steel bag of 5 kg.", source, P) == []
    assert m.unsupported_claims("A redwood bag.", source, P) == []  # whole words only


def test_format_problems():
    assert m.format_problems("A fine red mug.", P) == []
    assert m.format_problems("Too short.", P) == ["too_short"]
    assert m.format_problems("Only $5 for **this** great mug.", P) == ["price", "markup"]
    assert m.format_problems("one two three. " * 4, P) == ["too_long"]
    assert m.format_problems("One red mug.\n\nTwo.\n\nThree.\n\nFour.", P) == [
        "too_many_paragraphs"
    ]
    assert m.format_problems("", P) == ["empty"]
    # cut at the token limit, or ending mid-sentence: not a compliant description
    assert m.format_problems("A fine red mug.", P, "length") == ["truncated"]
    assert m.format_problems("A fine red mug for the kitchen where you", P) == ["truncated"]


def test_diversity_by_hand():
    d = m.diversity(["the red mug", "the red lamp", "a blue sock"], P)
    assert d["distinct_1"] == pytest.approx(7 / 9)  # 7 unique of 9 words
    assert d["distinct_2"] == pytest.approx(5 / 6)  # "the red" twice among 6 bigrams
    assert d["opening_share"] == pytest.approx(2 / 3)
    assert d["repeated_phrase_share"] == pytest.approx(2 / 3)
    assert d["n"] == 3


def test_diversity_phrase_and_opening_need_two_texts():
    d = m.diversity(["a b a b", "c d"], P)  # "a b" repeats, but only within one text
    assert d["repeated_phrase_share"] == 0.0
    assert d["opening_share"] == 0.0  # no two open alike (it read 1/2: any opening was "top")
    assert m.diversity(["a b c"], P)["opening_share"] == 0.0  # one text (it read 1.0)
    assert m.diversity(["a b c", "a b d", "e f"], P)["opening_share"] == pytest.approx(2 / 3)
    assert d["distinct_2"] == pytest.approx(3 / 4)  # ab, ba, ab, cd
    empty = m.diversity([], P)
    assert empty == {"distinct_1": 0.0, "distinct_2": 0.0, "opening_share": 0.0,
                     "repeated_phrase_share": 0.0, "n": 0}  # fmt: skip


class FakeEmbedder:
    """Unit vectors: [1, 0] for texts with "silk", [0.6, 0.8] otherwise."""

    def __init__(self):
        self.calls = 0

    def encode(self, texts, normalize_embeddings, convert_to_numpy):
        self.calls += 1
        return np.array([[1.0, 0.0] if "silk" in t else [0.6, 0.8] for t in texts])


SHIRT = ("shirts", '{"Colour": "Red", "Material": "Cotton"}', "Shirt. Colour: Red. Cotton.")
MUG = ("mugs", '{"Colour": "White", "Material": "Ceramic"}', "Mug. White. Ceramic.")


def _items():
    rows = [
        ("teacher", "p1", SHIRT, "A red cotton shirt."),
        ("student", "p1", SHIRT, "A red silk shirt."),
        ("base_student", "p1", SHIRT, None),
        ("teacher", "p2", MUG, "A white ceramic mug."),
        ("student", "p2", MUG, "A white ceramic mug."),
        ("base_student", "p2", MUG, "A blue mug for tea."),
    ]
    refs = {"p1": "A red cotton shirt.", "p2": "A white ceramic mug."}
    return pd.DataFrame(
        [
            {"system": s, "product_id": p, "category": c, "text": t, "reference": refs[p],
             "input_text": src, "attributes": a}
            for s, p, (c, a, src), t in rows
        ]
    )  # fmt: skip


def test_score_items_rules():
    items = _items()
    before = items.copy()
    embedder = FakeEmbedder()
    scores = m.score_items(items, embedder, P)
    pd.testing.assert_frame_equal(items, before)
    assert embedder.calls == 2  # one batch for the texts, one for the references
    assert list(scores["system"]) == list(items["system"])
    teacher, student, failed = (scores.iloc[i] for i in range(3))
    for col in ("rouge_l", "chrf", "embedding_cosine"):
        assert math.isnan(teacher[col]) and failed[col] == 0.0
    assert teacher["attribute_coverage"] == 1.0 and teacher["format_compliant"]
    assert student["rouge_l"] == pytest.approx(3 / 4)  # LCS 3 of 4 tokens each way
    assert 0 < student["chrf"] < 100
    assert student["embedding_cosine"] == pytest.approx(0.6)
    assert student["attribute_coverage"] == pytest.approx(1 / 2)
    assert (student["unsupported_claims"], student["unsupported_detail"]) == (1, "material:silk")
    assert student["words"] == 4 and not student["failed"]
    assert failed["failed"] and not failed["format_compliant"]
    assert failed["format_problems"] == "empty" and failed["attribute_coverage"] == 0.0
    assert scores.iloc[4]["embedding_cosine"] == pytest.approx(1.0)
    assert scores.iloc[5]["unsupported_detail"] == "colour:blue"


def test_aggregate_overall_and_per_category():
    items = _items()
    result = m.aggregate(m.score_items(items, FakeEmbedder(), P), items, P)
    json.dumps(result, allow_nan=False)
    student = result["overall"]["student"]
    assert student["rouge_l"] == pytest.approx((3 / 4 + 1) / 2)
    assert student["embedding_cosine"] == pytest.approx((0.6 + 1) / 2)
    assert student["attribute_coverage"] == pytest.approx((1 / 2 + 1) / 2)
    assert student["unsupported_claims_per_item"] == pytest.approx(1 / 2)
    assert student["unsupported_item_share"] == pytest.approx(1 / 2)
    assert student["format_compliance"] == 1.0 and student["failure_share"] == 0.0
    assert (student["n"], student["mean_words"], student["opening_share"]) == (2, 4.0, 0.0)
    assert student["distinct_1"] == pytest.approx(7 / 8)  # only "a" repeats among 8 words
    base = result["overall"]["base_student"]
    assert base["rouge_l"] == pytest.approx((0 + 4 / 9) / 2)
    assert base["failure_share"] == 0.5 and base["format_compliance"] == 0.5
    assert base["mean_words"] == 5.0 and base["diversity_n"] == 1
    assert result["overall"]["teacher"]["rouge_l"] is None
    shirts, mugs = result["per_category"]["shirts"], result["per_category"]["mugs"]
    assert shirts["student"]["rouge_l"] == pytest.approx(3 / 4)
    assert mugs["student"]["rouge_l"] == pytest.approx(1.0)
    assert shirts["base_student"]["failure_share"] == 1.0
    assert shirts["base_student"]["mean_words"] is None
    assert shirts["base_student"]["distinct_1"] == 0.0
    assert mugs["base_student"]["unsupported_claims_per_item"] == 1.0
