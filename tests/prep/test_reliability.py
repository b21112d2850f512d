"""Ids stay exactly as given; validation sees cleaned text; control characters and nested
attribute values do not reach the model input as they came."""

from __future__ import annotations

import json

from product_descgen.datasets import JSONLinesDataset
from product_descgen.pipelines.data_prep.nodes import (
    build_model_inputs,
    clean_catalogue,
    ingest_catalogue,
)
from product_descgen.prep.config import DataPrepParams

GOOD = {"title": "Red Mug", "category": "Kitchen", "attributes": {"Color": "Red"},
        "description": "A red mug."}  # fmt: skip


def write_lines(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records))


def test_numeric_ids_stay_exact_strings_even_beside_bad_rows(tmp_path):
    big = 2**60 + 1  # not representable as a float
    write_lines(
        tmp_path / "c.jsonl",
        [{**GOOD, "product_id": 1000}, {**GOOD, "title": "No id"}, "{not json",
         {**GOOD, "product_id": big, "title": "Blue Mug"}],
    )  # fmt: skip
    raw = JSONLinesDataset(str(tmp_path / "c.jsonl")).load()
    kept, _ = ingest_catalogue(raw, DataPrepParams(limits={"min_kept_share": 0.1}))
    assert kept["product_id"].tolist() == ["1000", str(big)]


def test_a_title_or_attributes_of_markup_alone_are_quarantined_after_cleaning(tmp_path):
    write_lines(
        tmp_path / "c.jsonl",
        [{**GOOD, "product_id": "a"}, {**GOOD, "product_id": "b", "title": "<b></b>&nbsp;"},
         {**GOOD, "product_id": "c", "attributes": {"Color": "<i></i>"}},
         {**GOOD, "product_id": "d", "title": "Green Mug"}],
    )  # fmt: skip
    params = DataPrepParams()
    kept, _ = ingest_catalogue(JSONLinesDataset(str(tmp_path / "c.jsonl")).load(), params)
    cleaned, quarantined = clean_catalogue(kept, params)
    assert cleaned["product_id"].tolist() == ["a", "d"]
    reasons = dict(zip(quarantined["product_id"], quarantined["reason"], strict=True))
    assert reasons == {"b": "missing_title", "c": "no_usable_attributes"}


def test_control_characters_go_and_nested_values_become_json(tmp_path):
    write_lines(
        tmp_path / "c.jsonl",
        [{**GOOD, "product_id": "a", "title": "Red\x00 Mug\x1b[31m\u200b",
          "attributes": {"Size": {"h": 10, "w": 8}, "Color": "Red"}}],
    )  # fmt: skip
    params = DataPrepParams()
    kept, _ = ingest_catalogue(JSONLinesDataset(str(tmp_path / "c.jsonl")).load(), params)
    cleaned, _ = clean_catalogue(kept, params)
    text = build_model_inputs(cleaned, params)["input_text"].iloc[0]
    assert "\x00" not in text and "\x1b" not in text and "\u200b" not in text
    assert 'Size: {"h": 10, "w": 8}' in text and "{'h'" not in text


def test_a_field_named_like_the_loaders_own_columns_is_data_not_an_error(tmp_path):
    write_lines(tmp_path / "c.jsonl", [{**GOOD, "product_id": "a", "_load_error": "mine"}])
    raw = JSONLinesDataset(str(tmp_path / "c.jsonl")).load()
    kept, quarantined = ingest_catalogue(raw, DataPrepParams())
    assert kept["product_id"].tolist() == ["a"] and quarantined.empty
    assert raw.loc[0, "source_load_error"] == "mine"
