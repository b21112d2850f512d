from product_descgen.prep.config import AudienceParams
from product_descgen.prep.inputs import audience_for, build_input_text, original_description


def test_audience_per_category_else_default():
    params = AudienceParams(default="everyone", per_category={"Toys": "parents"})
    assert audience_for("Toys", params) == "parents"
    assert audience_for("Books", params) == "everyone"


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
