import pandas as pd

from product_descgen.pipelines.data_prep.nodes import filter_by_length
from product_descgen.prep.config import AudienceParams, DataPrepParams
from product_descgen.prep.inputs import (
    CUT_ATTRIBUTES,
    CUT_MARK,
    audience_for,
    build_input_text,
    cut_input_to_fit,
    original_description,
    unmatched_audiences,
)


def test_audience_per_category_else_default():
    params = AudienceParams(default="everyone", per_category={"Toys": "parents"})
    assert audience_for("Toys", params) == "parents"
    assert audience_for("Books", params) == "everyone"


def test_audience_keys_match_whatever_case_spacing_or_ampersand():
    params = AudienceParams(default="everyone", per_category={"Beauty & Personal Care": "carers"})
    assert audience_for("Beauty and Personal Care", params) == "carers"
    assert audience_for("beauty  &  personal-care", params) == "carers"
    assert audience_for("Beauty Care", params) == "everyone"


def test_audience_keys_that_match_no_category_are_named_with_the_category_they_misspell():
    params = AudienceParams(
        per_category={"Toys & Games": "parents", "Kitchen": "cooks", "Jewelry": "gift buyers"}
    )
    categories = ["kitchen", "Toys & School Supplies", "Jewellery", "Jewellery"]
    assert unmatched_audiences(categories, params) == {"Toys & Games": None, "Jewelry": "Jewellery"}
    # a category with its own audience is no misspelling's target
    params = AudienceParams(per_category={"Jewelry": "gift buyers", "jewellery": "jewellers"})
    assert unmatched_audiences(["Jewellery"], params) == {"Jewelry": None}
    # a key naming part of a category ("Kitchen" for "Kitchen & Dining") is meant for it
    params = AudienceParams(per_category={"Kitchen": "cooks", "Toys": "parents"})
    assert unmatched_audiences(["Kitchen & Dining", "Books"], params) == {
        "Kitchen": "Kitchen & Dining", "Toys": None,
    }  # fmt: skip


def test_build_input_text_layout():
    product = {
        "title": "Mug",
        "category": "Kitchen",
        "attributes": {"Color": "Red", "Capacity": "350 ml"},
        "description": "",
    }
    assert build_input_text(product, "tea lovers") == (
        "Product: Mug\nCategory: Kitchen\nAudience: tea lovers\nAttributes:\n"
        "- Color: Red\n- Capacity: 350 ml\nOriginal description: (none)"
    )


def test_original_description_is_read_back_from_the_input():
    product = {"title": "Mug", "category": "Kitchen", "attributes": {"Color": "Red"}}
    text = "A red mug.\n\nHolds 350 ml."  # over several lines
    assert original_description(build_input_text(product | {"description": text}, "all")) == text
    assert original_description(build_input_text(product | {"description": ""}, "all")) == ""
    assert original_description("Product: Mug") == ""


def words(text: str) -> int:
    return len(text.split())


class WordTokenizer:
    """A tokenizer whose tokens are words, so budgets are easy to read."""

    def __call__(self, texts, add_special_tokens=False):
        if isinstance(texts, str):
            return {"input_ids": list(range(words(texts)))}
        return {"input_ids": [list(range(words(t))) for t in texts]}


PRODUCT = {"title": "Mug", "category": "Kitchen", "attributes": {"Color": "Red"}}


def test_a_long_original_description_is_cut_at_a_word_to_fit():
    text = build_input_text(PRODUCT | {"description": "one, two three four five six"}, "all")
    facts = words(text) - 6  # the input without its description's six words
    cut = cut_input_to_fit(text, words, facts + 3)
    assert cut is not None and words(cut) <= facts + 3
    assert original_description(cut) == "one, two" + CUT_MARK  # whole words, no trailing comma
    assert cut_input_to_fit(text, words, words(text)) == text  # it fits: unchanged


def test_facts_alone_over_the_budget_keep_their_first_attributes():
    attributes = {f"K{i}": "v" for i in range(10)}
    text = build_input_text(PRODUCT | {"attributes": attributes, "description": "one two"}, "all")
    head = text.split("- K0")[0]  # product, category, audience, "Attributes:"
    budget = words(head) + 3 * 3 + 2 + 3  # three attributes, the cut mark, the last line
    cut = cut_input_to_fit(text, words, budget)
    assert (
        cut == head + "- K0: v\n- K1: v\n- K2: v\n" + CUT_ATTRIBUTES + "\nOriginal description: …"
    )
    assert original_description(cut) == "…"
    assert cut_input_to_fit(text, words, words(head) + 3) is None  # not even one attribute


def test_the_length_filter_cuts_new_products_and_quarantines_training_rows():
    params = DataPrepParams(length_filter={"max_tokens": 40, "output_token_budget": 10})
    long = "word " * 60
    rows = [
        {"product_id": "short", "description": "A red mug."},
        {"product_id": "long", "description": long.strip()},
        {"product_id": "facts", "description": "", "attributes": {f"K{i}": "v" for i in range(40)}},
        {"product_id": "title", "title": "word " * 40, "description": ""},
    ]
    examples = pd.DataFrame(
        [
            {**PRODUCT, **row, "input_text": build_input_text({**PRODUCT, **row}, "all")}
            for row in rows
        ]
    )
    kept, quarantined = filter_by_length(examples, WordTokenizer(), params, min_kept_share=0.0)
    assert kept["product_id"].tolist() == ["short"]
    assert quarantined["reason"].tolist() == ["too_many_tokens"] * 3
    kept, quarantined = filter_by_length(
        examples, WordTokenizer(), params, min_kept_share=0.0, cut_to_fit=True
    )
    assert kept["product_id"].tolist() == ["short", "long", "facts"]
    assert kept["input_tokens"].tolist()[1] <= 30
    assert kept["cut_from_tokens"].tolist()[1] == words(examples.loc[1, "input_text"])
    assert pd.isna(kept["cut_from_tokens"].tolist()[0])
    assert kept.loc[1, "description"].endswith(CUT_MARK)
    assert kept.loc[1, "input_text"].endswith(kept.loc[1, "description"])
    assert kept.loc[2, "input_text"].endswith(CUT_ATTRIBUTES + "\nOriginal description: …")
    assert quarantined["product_id"].tolist() == ["title"]  # its title alone is over
    assert "even with one attribute and no description" in quarantined.loc[0, "detail"]
