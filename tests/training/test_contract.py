"""The student's serving contract travels with its adapter and decides how it is prompted."""

from __future__ import annotations

import json

import pytest

from product_descgen.llm.types import GenerationSettings
from product_descgen.training.contract import served_prompt, serving_contract, stop_strings

TEMPLATE = "### Product\n{input_text}\n### Description\n"


def test_the_stop_strings_follow_from_the_template():
    assert stop_strings(TEMPLATE) == ["###"]
    assert stop_strings("<<Item>>\n{input_text}\n<<Text>>\n") == ["<<"]
    assert stop_strings("Describe: {input_text}\n") == []


def test_the_adapters_contract_is_served_and_a_changed_template_refused(tmp_path):
    (tmp_path / "serving.json").write_text(json.dumps(serving_contract(TEMPLATE, "/base")))
    template, settings = served_prompt(tmp_path, TEMPLATE, GenerationSettings(stop=["</s>"]))
    assert template == TEMPLATE and settings.stop == ["</s>", "###"]
    with pytest.raises(ValueError, match="was trained with the prompt template"):
        served_prompt(tmp_path, "Product: {input_text}\nDescription:", GenerationSettings())


def test_an_adapter_without_a_contract_is_served_with_todays_template(tmp_path):
    template, settings = served_prompt(tmp_path, TEMPLATE, GenerationSettings())
    assert template == TEMPLATE and settings.stop == []
