import pytest

from product_descgen.training.vices import ViceThresholds, detect_vices

T = ViceThresholds(min_outputs=3)
INPUTS = ["Product: Mug\n- Color: Red", "Product: Lamp\n- Color: Blue", "Product: Sock\n- Size: M"]
REFS = ["A red mug for tea lovers.", "A blue lamp for the desk.", "A soft sock in size M."]


def test_varied_outputs_are_not_flagged():
    outputs = ["A red mug for tea.", "This blue lamp lights a desk.", "Soft socks in size M."]
    result = detect_vices(outputs, INPUTS, REFS, T)
    assert result["flags"] == [] and not result["flagged"]
    assert result["opening_share"] == pytest.approx(1 / 3)


def test_same_made_up_opening_is_flagged():
    outputs = [
        "Introducing the Velvet Touch experience: a red mug.",
        "Introducing the Velvet Touch experience: a blue lamp.",
        "Introducing the Velvet Touch experience: a sock.",
    ]
    result = detect_vices(outputs, INPUTS, REFS, T)
    assert result["top_opening"] == "introducing the velvet"
    assert result["opening_share"] == 1.0
    assert result["top_phrase"] and result["repeated_phrase_share"] == 1.0
    assert {"same_opening", "repeated_phrase"} <= set(result["flags"])


def test_phrases_copied_from_the_inputs_are_not_vices():
    inputs = ["Made of solid oak wood here"] * 3
    outputs = ["Made of solid oak wood.", "It is made of solid oak.", "Made of solid oak, nice."]
    result = detect_vices(outputs, inputs, outputs, T)
    assert "repeated_phrase" not in result["flags"]


def test_length_drift_and_format_violations():
    outputs = ["**Bold** claim " * 10, "We love it " * 10, "Fine text here " * 10]
    result = detect_vices(outputs, INPUTS, REFS, T)
    assert result["length_drift"] > 1
    assert result["format_violation_share"] == pytest.approx(2 / 3)
    assert {"length_drift", "format_violations"} <= set(result["flags"])


def test_no_outputs_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        detect_vices([], [], [], T)


def test_a_text_repeating_itself_is_a_vice():
    loop = "A red mug for tea. A red mug for tea. A red mug for tea."
    outputs = [loop, "This blue lamp lights a desk.", "Soft socks in size M."]
    result = detect_vices(outputs, INPUTS, REFS, T)
    assert result["self_repetition_share"] == pytest.approx(1 / 3)
    assert "self_repetition" in result["flags"]


def test_too_few_probe_texts_are_said_and_not_judged_on_shares():
    outputs = ["Introducing the Velvet Touch: a red mug."] * 3
    result = detect_vices(outputs, INPUTS, REFS, ViceThresholds(min_outputs=8))
    assert result["too_few_outputs"] and result["outputs"] == 3
    assert "same_opening" not in result["flags"]
