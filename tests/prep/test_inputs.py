from product_descgen.prep.config import AudienceParams
from product_descgen.prep.inputs import audience_for, build_input_text


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
