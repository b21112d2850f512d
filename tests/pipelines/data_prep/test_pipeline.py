"""data_prep end to end through a real KedroSession, real datasets and the project's config."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from product_descgen.project_config import load_project_params
from tests.conftest import SHARED_DATA
from tests.pipelines.helpers import run_pipeline

DEMO_ROWS = 128  # lines in data/01_raw/products.jsonl: 120 good, 8 deliberately broken


def run_data_prep(project: Path, tiny_model_dir: Path, env: str | None = None, **params):
    """Run data_prep in ``project`` with the tiny student (real SmolLM2 tokenizer)."""
    run_pipeline(project, tiny_model_dir, "data_prep", env, **params)


def load_outputs(project: Path, data_root: str = "data") -> dict:
    data = project / data_root
    return {
        "summary": json.loads((data / "08_reporting" / "data_prep_summary.json").read_text()),
        "quarantine": pd.read_parquet(data / "02_intermediate" / "quarantine.parquet"),
        **{
            split: pd.read_parquet(data / "05_model_input" / f"{split}_examples.parquet")
            for split in ("train", "validation", "test")
        },
    }


@pytest.mark.slow
def test_demo_catalogue(project_copy, tiny_model_dir):
    run_data_prep(project_copy, tiny_model_dir)
    out = load_outputs(project_copy)
    summary, quarantine = out["summary"], out["quarantine"]
    kept = pd.concat([out["train"], out["validation"], out["test"]], ignore_index=True)

    assert summary["raw_rows"] == DEMO_ROWS
    assert summary["kept"] + summary["quarantined"] == DEMO_ROWS == len(kept) + len(quarantine)
    reasons = dict(zip(quarantine["product_id"].fillna("?"), quarantine["reason"], strict=True))
    assert reasons == {
        "DEMO-0121": "missing_title",
        "DEMO-0122": "missing_title",
        "DEMO-0123": "no_usable_attributes",
        "DEMO-0042": "duplicate_product_id",
        "DEMO-0124": "unparseable_attributes",
        "DEMO-0125": "text_too_long",
        "DEMO-0126": "duplicate_content",
        "?": "malformed_json",
    }
    assert (
        quarantine.loc[quarantine["reason"] == "malformed_json", "detail"]
        .item()
        .startswith("line 128:")
    )
    assert quarantine["detail"].str.len().gt(0).all()
    assert not kept["description"].str.contains("Price: Rs", regex=False).any()
    assert not kept["description"].str.contains(r"[\t<>]|&amp;|&nbsp;").any()
    assert kept.set_index("product_id").loc["DEMO-0093", "category"] == "Uncategorised"
    assert kept["product_id"].is_unique
    assert (kept["input_tokens"] > 0).all()
    first = kept.iloc[0]
    assert first["input_text"].startswith(f"Product: {first['title']}\n")
    assert json.loads(first["attributes"])  # attributes persisted as a JSON object
    # the MLflow run records every setting, flattened (product_descgen.hooks)
    client = mlflow.MlflowClient(f"sqlite:///{project_copy}/data/09_tracking/mlflow.db")
    experiment = client.get_experiment_by_name("product_descgen").experiment_id
    [run] = client.search_runs([experiment])
    logged = run.data.params
    assert logged["cfg.finetune.ludwig.trainer.learning_rate"] == "0.001"
    assert logged["cfg.data_prep.limits.min_attributes"] == "1"
    assert "cfg.data_prep.audience.per_category.Kitchen _ Dining" in logged


@pytest.mark.slow
def test_wrong_parameter_fails_before_any_node_runs(project_copy, tiny_model_dir):
    data_prep = load_project_params(root=project_copy)["data_prep"]
    bad = {**data_prep, "split": {**data_prep["split"], "train": 0.95}}
    with pytest.raises(Exception, match="sum to 1") as err:
        run_data_prep(project_copy, tiny_model_dir, data_prep=bad)
    assert "split" in str(err.value)
    assert not list((project_copy / "data" / "02_intermediate").glob("*.parquet"))


@pytest.mark.slow
def test_empty_catalogue_is_a_clear_error(project_copy, tiny_model_dir):
    (project_copy / "data" / "01_raw" / "products.jsonl").write_text("")
    with pytest.raises(ValueError, match="raw_products: the catalogue has no rows"):
        run_data_prep(project_copy, tiny_model_dir)


@pytest.mark.slow
def test_missing_required_column_is_a_clear_error(project_copy, tiny_model_dir):
    rows = [{"product_id": "1", "name": "Mug", "category": "K", "attributes": {"a": "b"}}]
    (project_copy / "data" / "01_raw" / "products.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows)
    )
    with pytest.raises(ValueError, match=r"title \(mapped to column 'title'\)"):
        run_data_prep(project_copy, tiny_model_dir)


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.skipif(
    not (SHARED_DATA / "flipkart_products_2000.jsonl").is_file(),
    reason="../shared/data/flipkart_products_2000.jsonl is not present (developer/CI data only)",
)
def test_flipkart_catalogue_through_the_flipkart_env(project_copy, tiny_model_dir):
    catalog = project_copy / "conf" / "flipkart" / "catalog.yml"
    catalog.write_text(
        catalog.read_text().replace(
            "../shared/data/flipkart_products_2000.jsonl",
            str(SHARED_DATA / "flipkart_products_2000.jsonl"),
        )
    )
    run_data_prep(project_copy, tiny_model_dir, env="flipkart")
    out = load_outputs(project_copy, "data/flipkart")  # its own data root: the demo's untouched
    assert not (project_copy / "data" / "08_reporting" / "data_prep_summary.json").exists()
    summary, quarantine = out["summary"], out["quarantine"]
    splits = {name: out[name] for name in ("train", "validation", "test")}
    kept = pd.concat(splits.values(), ignore_index=True)

    assert summary["kept"] + summary["quarantined"] == 2000
    assert len(kept) + len(quarantine) == 2000
    assert quarantine["reason"].notna().all() and quarantine["reason"].str.len().gt(0).all()
    assert quarantine["detail"].str.len().gt(0).all()
    for column in ("description", "input_text"):
        assert not kept[column].str.contains("Price: Rs.", regex=False).any()
        assert not kept[column].str.contains("\t", regex=False).any()
    for name, share in {"train": 0.8, "validation": 0.1, "test": 0.1}.items():
        assert abs(len(splits[name]) / len(kept) - share) <= 0.02, name
    missing = set(splits["train"]["category"]) - set(splits["test"]["category"])
    assert missing <= set(summary["category_coverage"]["missing_from_test"])
    assert set(kept["category"]) <= set(
        pd.read_json(SHARED_DATA / "flipkart_products_2000.jsonl", lines=True)["top_category"]
    )
