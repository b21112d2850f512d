"""data_prep nodes' own behaviour (the wiring is tested in test_pipeline.py)."""

from __future__ import annotations

import logging

import pandas as pd

from product_descgen.pipelines.data_prep.nodes import (
    build_model_inputs,
    clean_catalogue,
    ingest_catalogue,
)
from product_descgen.prep.config import DataPrepParams


def cleaned(categories: list[str]) -> pd.DataFrame:
    raw = pd.DataFrame(
        [
            {"product_id": str(i), "title": f"Item {i}", "category": category,
             "attributes": {"Colour": "Red"}, "description": f"Item {i}."}
            for i, category in enumerate(categories)
        ]
    )  # fmt: skip
    products, _ = clean_catalogue(ingest_catalogue(raw, DataPrepParams())[0], DataPrepParams())
    return products


def test_a_misspelt_audience_category_is_warned_about_in_the_training_catalogue(caplog):
    params = DataPrepParams.model_validate(
        {"audience": {"per_category": {"Kitchen and Dining": "cooks", "Toys & Gmaes": "parents"}}}
    )
    products = cleaned(["Kitchen & Dining", "Toys & Games"])
    with caplog.at_level(logging.WARNING):
        inputs = build_model_inputs(products, params)
    assert inputs["audience"].tolist() == ["cooks", params.audience.default]
    [warning] = [r.getMessage() for r in caplog.records if "per_category" in r.getMessage()]
    assert "'Toys & Gmaes' matches no category of this catalogue; 'Toys & Games' is close" in (
        warning
    )
    caplog.clear()
    # a key for categories this catalogue does not hold (base's table under --env flipkart):
    # logged, not warned about
    shared = params.model_copy(update={"audience": params.audience.model_copy(
        update={"per_category": {"Electronics": "tech-savvy buyers"}})})  # fmt: skip
    with caplog.at_level(logging.INFO):
        build_model_inputs(products, shared)
    [info] = [r for r in caplog.records if "per_category" in r.getMessage()]
    assert info.levelno == logging.INFO and "'Electronics'" in info.getMessage()
    caplog.clear()
    build_model_inputs(products, params, check_audiences=False)  # describe's few new products
    assert not [r for r in caplog.records if "per_category" in r.getMessage()]
