import pytest

from product_descgen.prep.clean import (
    clean_attributes,
    clean_description,
    clean_product,
    content_key,
    dedupe_segments,
    normalise_key,
    remove_boilerplate,
    strip_markup,
    strip_title_prefix,
)
from product_descgen.prep.config import CleaningParams

PATTERNS = [
    r"Price:\s*(?:Rs\.?|INR|₹|\$|€|£)\s*[\d,]+(?:\.\d+)?(?:\s*/-)?",
    r"(?:Key Features|Specifications) of {title}",
]
PARAMS = CleaningParams(boilerplate_patterns=PATTERNS)


def test_strip_markup_removes_tags_and_decodes_entities():
    assert strip_markup("<b>Soft</b> cotton &amp; linen&nbsp;blend") == "Soft cotton & linen blend"
    assert strip_markup("one<br/>two</p>three") == "one\ntwo\nthree"


SHOP_BODY = (
    "<h3>Why you will love it</h3><ul><li>Heavyweight 400 gsm organic cotton</li>"
    "<li>Brushed fleece inside.</li></ul><table><tr><th>Fit</th><td>Relaxed</td></tr>"
    "<tr><td>Care</td><td>Machine wash 30 °C</td></tr><tr><td>Sizes</td><td>S</td><td>M</td>"
    "</tr></table><dl><dt>Width</dt><dd>50 cm</dd></dl><p>Made in <b>Portugal</b></p>"
)


def test_strip_markup_keeps_headings_list_items_and_table_cells_apart():
    """A shop's HTML body: headings, list items and cells ran into one another
    ("Why you will love itHeavyweight ... FitRelaxedCare")."""
    assert strip_markup(SHOP_BODY).split("\n") == [
        "Why you will love it", "Heavyweight 400 gsm organic cotton", "Brushed fleece inside.",
        "Fit: Relaxed", "Care: Machine wash 30 °C", "Sizes, S, M", "Width: 50 cm",
        "Made in Portugal",
    ]  # fmt: skip
    assert clean_description(SHOP_BODY, "Hoodie", PARAMS) == (
        "Why you will love it. Heavyweight 400 gsm organic cotton. Brushed fleece inside. "
        "Fit: Relaxed. Care: Machine wash 30 °C. Sizes, S, M. Width: 50 cm. Made in Portugal."
    )
    product = {"title": "<p>Hoodie</p>", "category": "Clothing",
               "attributes": {"<b>Fit</b>": "<p>Relaxed</p>"}, "description": ""}  # fmt: skip
    cleaned = clean_product(product, PARAMS)  # a title or attribute in markup: no full stop
    assert (cleaned["title"], cleaned["attributes"]) == ("Hoodie", {"Fit": "Relaxed"})


@pytest.mark.parametrize(
    ("html", "shown"),
    [  # what shop editors write
        ("<table><tr><td><p>Fit:</p></td><td><p>Regular</p></td></tr></table>", "Fit: Regular."),
        ("<dl><dt><p>Width</p></dt><dd><p>50 cm</p></dd></dl>", "Width: 50 cm."),
        ("<table><tr><th>Care<br/></th><td>Cold <b>wash</b></td></tr></table>", "Care: Cold wash."),
        ("<table><tr><td>Area</td><td>2 m<sup>2</sup></td></tr></table>", "Area: 2 m2."),
        ('Soft cotton<br data-mce-fragment="1">Machine wash', "Soft cotton.\nMachine wash."),
        ("Made of premium<br>cotton for comfort.", "Made of premium\ncotton for comfort."),
        ("<ul><li>soft cotton</li><li>machine wash</li></ul>", "soft cotton.\nmachine wash."),
        ("<p>Icon \ue000font</p>", "Icon font."),  # a private-use character is no break
        ("<p>Icon &#xe000;font</p>", "Icon font."),  # nor one written as an entity
        ("Soft<br><br>washable", "Soft.\nwashable."),  # two line breaks end a paragraph
        (  # a table in a cell
            "<table><tr><td><table><tr><td>a</td><td>b</td></tr></table></td><td>c</td></tr></table>",
            "a: b: c.",
        ),
        # end tags left out, as HTML5 allows: cells and rows close as a browser closes them
        ("<table><tr><td>Colour<td>Red<tr><td>Size<td>M</table>", "Colour: Red.\nSize: M."),
        ("<table><td>Colour</td><td>Red</td></table>", "Colour: Red."),  # no row written
        ("<table>\n <td>Colour</td>\n <td>Red</td>\n</table>", "Colour: Red."),  # indented
        ("<table><td>a<td>b<tr><td>c<td>d</table>", "a: b.\nc: d."),
        ("<table><tr><th>Fit<td><b>Relaxed<td>Cotton</b></table>", "Fit, Relaxed, Cotton."),
        ("<p>x<td>y</p>", "xy."),  # a cell outside any table is ignored, as browsers do
        ('<p><img src="a.jpg"></p>', ""),  # markup that shows nothing (it crashed)
        ("<ul><li></li></ul><p>&nbsp;</p><br/>", ""),
    ],
)
def test_strip_markup_reads_cells_terms_and_line_breaks_as_shown(html, shown):
    assert strip_markup(html, sentences=True) == shown


def test_strip_markup_keeps_less_and_greater_than_signs_that_open_no_tag():
    # spec text: a tag-like stretch "<40 dB ... >" is not a tag and holds product facts
    text = "Noise level <40 dB even at full speed. Battery life >10 hours."
    assert strip_markup(text) == text
    assert strip_markup("Weight <500 g, Height >20 cm &amp; <b>light</b>") == (
        "Weight <500 g, Height >20 cm & light"
    )
    assert strip_markup("x &lt;5 mm") == "x <5 mm"


def test_strip_markup_drops_scripts_styles_and_comments_with_what_they_hold():
    text = (
        "<style>.x{color:red}</style>Soft <SCRIPT type='text/javascript'>alert(1)</SCRIPT>"
        "cotton<!-- tracking pixel -->"
    )
    assert strip_markup(text) == "Soft cotton"


def test_remove_boilerplate_price_and_title_headings():
    text = "Nice mug Price: Rs. 1,299 Key Features of Blue Mug (350 ml) Holds tea."
    out = remove_boilerplate(text, PATTERNS, "Blue Mug (350 ml)")
    assert "Price" not in out and "Rs." not in out and "Key Features" not in out
    assert "Holds tea." in out and "Nice mug" in out


def test_title_placeholder_is_escaped_not_a_regex():
    # A title with regex metacharacters must match literally, and only itself.
    assert remove_boilerplate("Specifications of A+B (x)", PATTERNS, "A+B (x)").strip() == ""
    assert remove_boilerplate("Specifications of AAB x", PATTERNS, "A+B (x)").strip() != ""


def test_dedupe_segments_drops_repeated_sentences_and_lines():
    text = "Great kadhai. Mirror finish\nGreat kadhai. Mirror finish\nEasy to clean!"
    assert dedupe_segments(text) == "Great kadhai.\nMirror finish\nEasy to clean!"
    assert dedupe_segments("Soft. soft") == "Soft."  # case and final punctuation ignored


def test_strip_title_prefix_whole_word_only():
    assert strip_title_prefix("Blue Mug: holds tea", "Blue Mug") == "holds tea"
    assert strip_title_prefix("Cupboard in oak", "Cup") == "Cupboard in oak"
    assert strip_title_prefix("A mug", "Blue Mug") == "A mug"


def test_clean_description_full_chain():
    raw = (
        "Oleva Bra\n   Price: Rs. 349\n\t\t\n\tTrendy   innerwear &amp; more.\n"
        "Trendy innerwear &amp; more.\nShop with confidence!"
    )
    out = clean_description(raw, "Oleva Bra", PARAMS)
    assert out == "Trendy innerwear & more. Shop with confidence!"
    assert "\t" not in out and "  " not in out


def test_clean_description_respects_switches():
    params = CleaningParams(strip_title_prefix=False, dedupe_sentences=False)
    assert clean_description("Mug. Mug.", "Mug", params) == "Mug. Mug."


def test_normalise_key():
    assert normalise_key("  color: ") == "Color"
    assert normalise_key("Model\tNumber") == "Model Number"
    assert normalise_key("- Weight -") == "Weight"


def test_clean_attributes_merges_case_variants_and_drops_empty():
    attrs = {"color": "Red", "Color ": "red", "COLOR": "Blue", "Size": "  ", " Weight:": "2 kg"}
    assert clean_attributes(attrs) == {"Color": "Red; Blue", "Weight": "2 kg"}


def test_clean_product_does_not_mutate_input():
    product = {
        "product_id": "1",
        "title": " Mug ",
        "category": "Kitchen",
        "attributes": {"color:": "red"},
        "description": "Mug. A <b>mug</b>.",
    }
    before = {**product, "attributes": dict(product["attributes"])}
    cleaned = clean_product(product, PARAMS)
    assert product == before
    assert cleaned["title"] == "Mug"
    assert cleaned["attributes"] == {"Color": "red"}
    assert cleaned["description"] == "A mug."


def test_content_key_ignores_case_and_attribute_order():
    a = {"title": "Mug", "attributes": {"A": "1", "B": "2"}, "description": "x"}
    b = {"title": "MUG", "attributes": {"B": "2", "A": "1"}, "description": "X"}
    c = {"title": "Mug", "attributes": {"A": "1"}, "description": "x"}
    assert content_key(a) == content_key(b) != content_key(c)
