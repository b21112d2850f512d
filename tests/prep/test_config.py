import pytest
from pydantic import ValidationError

from product_descgen.prep.config import DataPrepParams


def test_defaults_are_valid():
    assert DataPrepParams().split.train == 0.8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"split": {"train": 0.9, "validation": 0.1, "test": 0.1}}, "must sum to 1"),
        ({"split": {"train": 1.2}}, "split.train"),
        ({"colums": {}}, "colums"),
        ({"length_filter": {"max_tokens": 100, "output_token_budget": 200}}, "output_token_budget"),
        ({"cleaning": {"boilerplate_patterns": ["Price: (Rs"]}}, "not a valid regex"),
        ({"limits": {"max_description_chars": -1}}, "max_description_chars"),
    ],
)
def test_bad_settings_fail_naming_the_setting(params, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        DataPrepParams.model_validate(params)
