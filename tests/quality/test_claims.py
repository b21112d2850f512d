"""The grounded claim check: each kind of claim, supported and invented."""

from __future__ import annotations

import json
import unicodedata

import pandas as pd
import pytest

from product_descgen.quality.checks import GateParams, check_description
from product_descgen.quality.claims import (
    ClaimParams,
    build_lexicon,
    catalogue_lexicon,
    uncommon_names,
    unsupported_claims,
)

RING = (
    "Product: Sukkhi Alloy Ring\nCategory: Jewellery\nAttributes:\n- Brand: Sukkhi\n"
    "- Ideal For: Girls, Women\n- Material: Alloy\n- Color: Silver\n- Size: 7\n"
    "Original description: A silver-plated alloy ring with a floral motif, made in India."
)
CUTTER = (
    "Product: Prestige Pizza Cutter\nAttributes:\n- Material: Stainless Steel\n- Color: Black\n"
    "Original description: A sharp stainless steel wheel cutter."
)


def kinds(text: str, source: str, **kwargs) -> dict[str, str]:
    return {c.kind: c.phrase for c in unsupported_claims(text, source, **kwargs)}


@pytest.mark.parametrize(
    ("sentence", "kind", "phrase"),
    [
        ("It is set with sparkling diamonds.", "material", "diamonds"),
        ("A deep blue stone sits at its centre.", "colour", "blue"),
        ("A Nike design classic.", "brand", "Nike"),
        ("It suits both men and women.", "audience", "men"),
        ("It is hallmarked for purity.", "certification", "hallmarked"),
        ("It is waterproof for everyday wear.", "feature", "waterproof"),
        ("Crafted by artisans in Italy.", "place", "Italy"),
        ("Now available at Amazon.", "retailer", "Amazon"),
        ("These earrings catch the light.", "product_type", "earrings"),
    ],
)
def test_each_kind_of_invented_claim_is_named_with_its_reason(sentence, kind, phrase):
    text = f"This silver alloy ring for women has a floral motif. {sentence}"
    found = kinds(text, RING)
    assert found == {kind: phrase}, found
    [claim] = unsupported_claims(text, RING)
    assert phrase in str(claim) and claim.reason


def test_claims_the_product_supports_are_not_flagged():
    text = (
        "Sukkhi's silver ring in alloy brings a floral motif to any outfit. Made in India, "
        "it suits girls and ladies alike and pairs well with a dress and heels."
    )
    assert unsupported_claims(text, RING) == []
    assert kinds("A black stainless steel cutter with a steel wheel.", CUTTER) == {}


def test_a_description_of_another_product_is_caught():
    necklace = "The Mala Mala Necklace is a gold pendant on a leather cord for men."
    found = kinds(necklace, RING, lexicon=build_lexicon(ClaimParams(), ["Mala Mala"]))
    assert found.keys() >= {"product_type", "material", "audience", "brand"}


def test_the_gate_reports_claims_with_the_other_problems():
    text = "This black stainless steel pizza cutter has a non-slip rubber base. " * 1
    problems = dict(check_description(text, CUTTER, GateParams(min_words=5)))
    assert "non-slip" in problems["unsupported_feature"]
    assert "rubber" in problems["unsupported_material"]


def test_uncommon_names_leave_out_ordinary_words():
    texts = ["a blue shirt", "a classic watch", "classic look", "the Classic"] * 10 + ["Sukkhi"]
    assert uncommon_names(["Sukkhi", "Classic"], texts) == ["Sukkhi"]
    products = pd.DataFrame(
        {"attributes": [json.dumps({"Brand": "Sukkhi"}), json.dumps({"Brand": "Oleva"})],
         "input_text": ["Sukkhi ring", "Oleva bra"]}
    )  # fmt: skip
    lexicon = catalogue_lexicon(ClaimParams(), products)
    assert kinds("An Oleva classic.", RING, lexicon=lexicon) == {"brand": "Oleva"}


def test_names_are_read_whole_in_any_script_and_the_check_can_be_turned_off():
    """Names were cut at the first non-ASCII letter ("Einzelk" for "Einzelkörper"); in German
    every noun reads as a name, so a German catalogue turns the check off."""
    products = pd.DataFrame(
        {"attributes": [json.dumps({})] * 40, "input_text": ["a plain mug for tea"] * 40}
    )
    lexicon = catalogue_lexicon(ClaimParams(), products)
    assert lexicon.names("made in the workshops of Zürich and Besançon") == ["Zürich", "Besançon"]
    german = "Die Flasche hält Getränke kalt, ein Einzelkörper aus Stahl."
    assert lexicon.names(german) == ["Flasche", "Getränke", "Einzelkörper", "Stahl"]
    assert catalogue_lexicon(ClaimParams(names=False), products).names(german) == []
    # a word the catalogue writes in lower case is ordinary whatever its case folding ("ß"),
    # and decomposed accents are letters
    prose = pd.DataFrame({"attributes": ["{}"] * 40, "input_text": ["on the straße"] * 40})
    assert catalogue_lexicon(ClaimParams(), prose).names("parked on Straße today") == []
    decomposed = unicodedata.normalize("NFD", "made in the city of Besançon")
    assert lexicon.names(decomposed) == [unicodedata.normalize("NFD", "Besançon")]
    # the text and the product's data in different forms of one accent name one place
    source = "Product: Mug\nAttributes:\n- Origin: Besançon\nOriginal description: x"
    nfd = unicodedata.normalize("NFD", "A mug made in the city of Besançon.")
    assert unsupported_claims(nfd, source, lexicon=lexicon) == []


def test_the_catalogues_own_materials_and_colours_extend_the_lexicon():
    products = pd.DataFrame(
        {"attributes": [json.dumps({"Material": "Mahogany", "Color": "Peach, Clear"}),
                        json.dumps({"Fabric": "Tweed"})] + [json.dumps({})] * 40,
         "input_text": ["Mahogany desk", "Tweed coat"] + ["clear and simple"] * 40}
    )  # fmt: skip
    lexicon = catalogue_lexicon(ClaimParams(), products)
    found = kinds("A tweed finish in peach, clear to see.", RING, lexicon=lexicon)
    assert found == {"material": "tweed", "colour": "peach"}  # "clear" is an ordinary word


def test_a_word_of_a_longer_term_in_the_data_is_supported():
    # the catalogue's "Mineral Glass" made "glass" alone look unsupported
    source = (
        "Product: Fastrack Sunglasses\nAttributes:\n- Lens Material: Mineral Glass\n"
        "Original description: Stylish sunglasses."
    )
    products = pd.DataFrame(
        {"attributes": [json.dumps({"Lens Material": "Mineral Glass"})] + [json.dumps({})] * 40,
         "input_text": [source] + ["plain text"] * 40}
    )  # fmt: skip
    lexicon = catalogue_lexicon(ClaimParams(), products)
    assert kinds("Lenses of tough glass keep your eyes safe.", source, lexicon=lexicon) == {}
    assert kinds("A frame of steel.", source, lexicon=lexicon) == {"material": "steel"}


def test_an_age_range_in_the_data_supports_the_audience_it_lies_within():
    toy = "Product: Stacking Rings\nAttributes:\n- Age Group: 3 - 10 Years\nOriginal description: x"
    assert kinds("Fun for children.", toy) == {}
    assert kinds("Made for babies.", toy) == {"audience": "babies"}  # 10 years is no baby
    bib = "Product: Bib\nAttributes:\n- Age Group: 6-12 Months\nOriginal description: x"
    assert kinds("Soft on babies' skin.", bib) == {}
    # an open-ended age supports the audiences it starts within (its "not for children under
    # 3" no longer does, being a negation)
    blocks = (
        "Product: Building Blocks\nAttributes:\n- Age Group: 4 years and above\n"
        "Original description: Ages 4 and up. Small parts, not for children under 3 years."
    )
    assert kinds("Fun for young kids.", blocks) == {}
    assert kinds("The perfect size for toddlers.", blocks) == {"audience": "toddlers"}
    assert kinds("Fun for kids.", blocks.replace("4 years and above", "8+ years")) == {}
    assert kinds("Made for babies.", blocks.replace("4 years", "6 months")) == {}


def test_an_attribute_that_denies_or_states_nothing_supports_no_claim():
    # "Microwave Safe: No" named the very term, so "microwave safe" passed as supported
    box = (
        "Product: Steel Lunch Box\nAttributes:\n- Material: Stainless Steel\n"
        "- Microwave Safe: No\n- Diamond Clarity: NA\n- Dishwasher Safe: Yes\n"
        "Original description: A leak-proof lunch box."
    )
    claims = unsupported_claims("It is microwave safe and dishwasher safe.", box)
    assert [(c.kind, c.reason) for c in claims] == [
        ("feature", "the product's data says 'Microwave Safe: No'")
    ]
    assert kinds("Set with diamonds.", box) == {"material": "diamonds"}
    assert kinds("Sturdy steel, safe in the dishwasher.", box) == {}
    # the term named elsewhere in the data is still supported
    titled = box.replace("Steel Lunch Box", "Microwave Safe Steel Lunch Box")
    assert kinds("It is microwave safe.", titled) == {}
    # a text that says it is not, as the data does, claims nothing
    assert kinds("It is not microwave safe: warm it in a pan.", box) == {}


def test_a_denying_attribute_named_by_the_text_is_flagged_whatever_the_lexicon():
    bag = (
        "Product: Travel Duffel\nAttributes:\n- Belt Included: No\n- Fit: No\n"
        "- Scratch Resistant: No\nOriginal description: A roomy bag."
    )
    claims = unsupported_claims("A roomy bag, belt included, scratch resistant.", bag)
    assert [(c.kind, c.phrase, c.reason) for c in claims] == [
        ("feature", "scratch resistant", "the product's data says 'Scratch Resistant: No'"),
        ("attribute", "belt included", "the product's data says 'Belt Included: No'"),
    ]
    assert kinds("A roomy bag with no belt included.", bag) == {}
    # the pair again in a specification table flattened into the description supports nothing
    flattened = bag.replace("A roomy bag.", "Type Duffel Belt Included No Scratch Resistant No")
    claims = unsupported_claims("Belt included, scratch resistant.", flattened)
    assert [c.kind for c in claims] == ["feature", "attribute"]
    assert kinds("A roomy bag with a relaxed fit.", bag) == {}  # names too short to look for


def test_hyphenated_terms_match_written_with_a_space_or_run_together():
    claims = unsupported_claims("It is scratch resistant and nonslip.", CUTTER)
    assert [(c.kind, c.phrase) for c in claims] == [
        ("feature", "scratch resistant"), ("feature", "nonslip")
    ]  # fmt: skip
    assert kinds("A stainless-steel wheel.", CUTTER) == {}


def test_a_negation_counts_only_right_before_the_claim_in_its_clause():
    box = "Product: Lunch Box\nAttributes:\n- Microwave Safe: No\nOriginal description: A box."
    for text in ("It has no lid. Microwave safe.", "Without fuss, microwave safe."):
        assert kinds(text, box) == {"feature": text[-15:-1]}, text
    assert kinds("It is not fully microwave safe.", box) == {}


def test_what_the_products_text_says_it_is_not_supports_nothing():
    box = "Product: Lunch Box\nAttributes:\n- Type: Box\nOriginal description: Not microwave safe."
    assert kinds("It is microwave safe.", box) == {"feature": "microwave safe"}


def test_a_brand_written_with_a_space_or_run_together_is_the_brand():
    shades = "Product: Ray-Ban Aviator\nAttributes:\n- Brand: Ray-Ban\nOriginal description: x"
    assert kinds("A classic Ray Ban shape, RayBan lenses.", shades) == {}


def test_a_text_reciting_a_denying_pair_of_the_data_claims_nothing():
    """Flipkart's descriptions flatten the specification table: the original text 'Belt
    Included No' was flagged as claiming a belt once the data's pair stopped supporting it."""
    dress = (
        "Product: Shift Dress\nAttributes:\n- Belt Included: No\n- Diamond Clarity: NA\n"
        "Original description: Sleeveless Belt Included No Fabric Viscose Diamond Clarity NA"
    )
    assert kinds("Sleeveless Belt Included No Fabric Viscose Diamond Clarity NA", dress) == {}
    assert kinds("Belt included, with diamonds.", dress) == {
        "attribute": "Belt included", "material": "diamonds"
    }  # fmt: skip


def test_a_term_the_text_negates_is_no_claim():
    """'Do Not Iron' in care instructions was flagged as an iron material claim once the
    product's own 'Do Not Iron' stopped supporting it."""
    shirt = (
        "Product: Printed Tee\nAttributes:\n- Fabric: Cotton\nOriginal description: Do Not Iron."
    )
    assert kinds("Soft cotton. Do not iron on the print.", shirt) == {}
    assert kinds("Soft cotton with iron buttons.", shirt) == {"material": "iron"}
