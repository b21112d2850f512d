"""Precision and recall of the quality checks on a labelled set built from the Flipkart sample.

    .venv/bin/python benchmarks/quality_checks.py [--products 300] [--seed 0]

Products: the shared Flipkart sample prepared by data_prep's nodes (conf/flipkart), those whose
cleaned description has 30-200 words. Texts, each checked against its product's model input
(title, attributes, original description):
- original: the product's own description (expected clean);
- injected <kind>: the description plus one false sentence of that kind, its term drawn from
  lists written here, independently of the checks' lexicons (terms the product's data names
  are skipped), so recall also measures the lexicons' coverage;
- injected denied attribute: the description plus a sentence claiming what one of the
  product's attributes denies ("- Microwave Safe: No" -> "It is microwave safe."), for the
  products that have one;
- swapped: another product's description, of the same category where there is one;
- repeated: the description with its first sentence said three more times.
Checks: the grounded claim check with numbers and prices (the gate's ``unsupported_*``,
``price``), the off-product check against all the products, and the repetition check.
Prints one table (docs/evaluation.md, "How well the checks work").
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import pandas as pd

from product_descgen.evaluation.metrics import load_embedder
from product_descgen.pipelines.data_prep.nodes import (
    build_model_inputs,
    clean_catalogue,
    ingest_catalogue,
)
from product_descgen.prep.config import DataPrepParams
from product_descgen.project_config import load_project_params
from product_descgen.quality.checks import (
    GateParams,
    check_price,
    check_repetition,
    check_unsupported_numbers,
)
from product_descgen.quality.claims import catalogue_lexicon, unsupported_claims
from product_descgen.quality.off_product import OffProductParams, check_off_product

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "flipkart_products_2000.jsonl"
INJECTIONS = {
    "material": ("It is crafted from {}.", ["genuine leather", "solid teak", "platinum",
                 "bamboo", "pure silk", "sterling silver", "mahogany", "pewter", "cashmere",
                 "tempered glass", "real diamonds", "tweed"]),
    "colour": ("It comes in a striking {} finish.", ["crimson", "emerald green", "navy blue",
               "turquoise", "mustard yellow", "lavender", "burgundy", "peach"]),
    "brand": ("A signature design from {}.", ["Nike", "Samsung", "Gucci", "Tanishq", "Philips",
              "Hermes", "Tommy Hilfiger", "Ray-Ban"]),
    "audience": ("It is made for {}.", ["men", "women", "kids", "boys and girls", "babies"]),
    "certification": ("It is {}.", ["ISI certified", "hallmarked", "FDA approved",
                      "dermatologically tested", "BIS certified", "clinically proven"]),
    "feature": ("It is {}.", ["waterproof", "dishwasher safe", "non-slip", "rechargeable",
                "shatterproof", "wrinkle-free", "machine washable", "fireproof"]),
    "place": ("It is made in {}.", ["Italy", "Japan", "Switzerland", "Germany", "France",
              "Vietnam", "Turkey"]),
    "retailer": ("Now available on {}.", ["Amazon", "eBay", "Myntra", "Walmart", "Snapdeal",
                 "Nykaa"]),
    "number": ("It measures {} cm across.", ["37", "128", "4.5", "1250"]),
    "price": ("Yours for just {}.", ["Rs. 499", "₹1,299", "$25"]),
}  # fmt: skip


def products(n: int, seed: int, path: Path) -> pd.DataFrame:
    params = DataPrepParams.model_validate(load_project_params("flipkart")["data_prep"])
    raw = pd.read_json(path, lines=True)
    kept, _ = ingest_catalogue(raw, params)
    cleaned, _ = clean_catalogue(kept, params)
    inputs = build_model_inputs(cleaned, params)
    words = inputs["description"].str.split().str.len()
    usable = inputs.loc[words.between(30, 200)]
    return usable.sample(n=min(n, len(usable)), random_state=seed).reset_index(drop=True)


def inject(row: dict, kind: str, rng: random.Random) -> tuple[str, str] | None:
    template, terms = INJECTIONS[kind]
    source = row["input_text"].casefold()
    fresh = [t for t in terms if not re.search(rf"\b{re.escape(t.casefold())}\b", source)]
    if not fresh:
        return None
    return f"{row['description'].rstrip()} {template.format(rng.choice(fresh))}", template


def deny(row: dict, rng: random.Random) -> dict | None:
    """The description plus a sentence claiming what one of its "No" attributes denies
    ("- Microwave Safe: No" -> "It is microwave safe."), if the product has one."""
    attributes = json.loads(row["attributes"]) if row["attributes"] else {}
    denied = sorted(k for k, v in attributes.items() if str(v).strip().casefold() == "no")
    if not denied:
        return None
    added = f"It is {rng.choice(denied).lower()}."
    return {"text": f"{row['description'].rstrip()} {added}", "added": added}


def labelled(items: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    by_category = items.groupby("category")["product_id"].apply(list).to_dict()
    for row in items.to_dict(orient="records"):
        base = {"product_id": row["product_id"], "input_text": row["input_text"]}
        rows.append({**base, "set": "original", "text": row["description"]})
        for kind in INJECTIONS:
            injected = inject(row, kind, rng)
            if injected:
                text, template = injected
                term = text[len(row["description"].rstrip()) + 1 :]
                rows.append({**base, "set": f"injected {kind}", "text": text, "added": term})
        peers = [p for p in by_category[row["category"]] if p != row["product_id"]]
        other = rng.choice(peers or [p for p in items["product_id"] if p != row["product_id"]])
        swapped = items.loc[items["product_id"] == other, "description"].iloc[0]
        rows.append({**base, "set": "swapped", "text": swapped})
        first = re.split(r"(?<=[.!?])\s+", row["description"].strip())[0]
        repeated = " ".join([row["description"].strip(), first, first, first])
        rows.append({**base, "set": "repeated", "text": repeated})
        denial = deny(row, random.Random(f"{seed}-{row['product_id']}"))
        if denial:
            rows.append({**base, "set": "injected denied attribute", **denial})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--catalogue", type=Path, default=SHARED)
    args = parser.parse_args()
    items = products(args.products, args.seed, args.catalogue)
    texts = labelled(items, args.seed)
    lexicon = catalogue_lexicon(GateParams().claims, items)
    gate = GateParams()

    def claim_flag(row: dict) -> bool:
        return bool(
            unsupported_claims(row["text"], row["input_text"], lexicon)
            or check_unsupported_numbers(row["text"], row["input_text"])
            or check_price(row["text"])
        )

    texts["claims"] = [claim_flag(r) for r in texts.to_dict(orient="records")]
    texts["repetition"] = [bool(check_repetition(t, gate)) for t in texts["text"]]
    findings = check_off_product(
        texts["text"].tolist(), texts["product_id"].tolist(), items["product_id"].tolist(),
        items["input_text"].tolist(), load_embedder(None), OffProductParams(),
    )  # fmt: skip
    texts["off_product"] = [bool(f and f.flagged) for f in findings]
    texts["claims or off-product"] = texts["claims"] | texts["off_product"]
    table = texts.groupby("set", sort=False)[
        ["claims", "off_product", "claims or off-product", "repetition"]
    ].mean()
    table.insert(0, "n", texts.groupby("set", sort=False).size())
    print(table.to_markdown(floatfmt=("", ".0f", ".1%", ".1%", ".1%", ".1%")))  # noqa: T201
    bad = {"claims": texts["set"] != "original", "repetition": texts["set"] == "repeated"}
    bad["claims or off-product"] = bad["off_product"] = texts["set"].str.startswith("injected") | (
        texts["set"] == "swapped"
    )
    clean = texts["set"] == "original"
    for check, target in bad.items():
        true_flags = int((texts[check] & target).sum())
        false_flags = int((texts[check] & clean).sum())
        precision = true_flags / max(true_flags + false_flags, 1)
        recall = true_flags / int(target.sum())
        line = f"{check}: precision {precision:.1%}, recall {recall:.1%} "
        print(f"{line}(originals flagged: {false_flags} of {int(clean.sum())})")  # noqa: T201
    print(f"products: {len(items)}, seed {args.seed}")  # noqa: T201
    missed = texts.loc[texts["set"].str.startswith("injected") & ~texts["claims or off-product"]]
    for kind, part in missed.groupby("set"):
        common = part["added"].value_counts().head(4).to_dict()
        print(f"missed, {kind}: {common}")  # noqa: T201


if __name__ == "__main__":
    main()
