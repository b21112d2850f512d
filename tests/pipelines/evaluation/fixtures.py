"""What the evaluation and describe pipelines need from earlier runs: a held-out test set and
a trained adapter (a LoRA adapter on the tiny model, made with peft in a second)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

ATTRIBUTES = [
    {"Material": "Ceramic", "Capacity": "350 ml", "Color": "Red"},
    {"Material": "Steel", "Capacity": "1.5 L", "Color": "Silver"},
    {"Fabric": "Cotton", "Size": "M", "Color": "Blue"},
    {"Material": "Bamboo", "Size": "30 x 20 cm"},
]


def write_test_sets(project: Path, n: int = 4) -> pd.DataFrame:
    """``distill_test`` (teacher references), ``test_examples`` (attributes) and
    ``model_inputs`` (the catalogue the speed test's gate checks against) for n products."""
    rows = []
    for i in range(n):
        attributes = ATTRIBUTES[i % len(ATTRIBUTES)]
        facts = "\n".join(f"- {k}: {v}" for k, v in attributes.items())
        rows.append(
            {
                "product_id": f"P{i}",
                "category": "Kitchen" if i % 2 == 0 else "Clothing",
                "title": f"Item {i}",
                "audience": "busy shoppers",
                "input_text": f"Product: Item {i}\nAttributes:\n{facts}",
                "target": f"Item {i} is made for busy shoppers. " + " ".join(attributes.values()),
                "target_words": 10,
                "attributes": json.dumps(attributes),
            }
        )
    frame = pd.DataFrame(rows)
    model_input = project / "data" / "05_model_input"
    frame.drop(columns="attributes").to_parquet(model_input / "distill_test.parquet")
    examples = frame[["product_id", "title", "category", "attributes", "audience", "input_text"]]
    examples.to_parquet(model_input / "test_examples.parquet")
    examples.to_parquet(project / "data" / "04_feature" / "model_inputs.parquet")
    return frame


def write_adapter(project: Path, tiny_model_dir: Path) -> Path:
    """A LoRA adapter for the tiny model where the finetune pipeline saves one (versioned)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    out = project / "data/06_models/student_adapter/2026-01-01T00.00.00.000Z/student_adapter"
    model.save_pretrained(out)
    return out


def write_newer_adapter(project: Path) -> Path:
    """A newer version of ``write_adapter``'s adapter with other files, as a later finetune run
    leaves one."""
    import shutil

    adapters = project / "data/06_models/student_adapter"
    newer = adapters / "2026-02-01T00.00.00.000Z/student_adapter"
    shutil.copytree(adapters / "2026-01-01T00.00.00.000Z/student_adapter", newer)
    with (newer / "adapter_config.json").open("a") as config:
        config.write("\n")
    return newer


def write_student_openvino(project: Path, exported: Path) -> Path:
    """The exported student where the finetune pipeline saves one (versioned). ``write_adapter``'s
    adapter starts with B = 0 (peft's initialisation), so the merged student is the tiny base:
    its export (the ``tiny_openvino_dir`` fixture) is exactly what finetune would export."""
    import shutil

    from product_descgen.export.openvino import RECORD
    from product_descgen.export.student import ADAPTER_KEY
    from product_descgen.models import model_fingerprint

    out = project / "data/06_models/student_openvino/2026-01-01T00.00.00.000Z/student_openvino"
    shutil.copytree(exported, out)
    adapter = project / "data/06_models/student_adapter/2026-01-01T00.00.00.000Z/student_adapter"
    if adapter.is_dir():  # as the finetune pipeline records it
        record = json.loads((out / RECORD).read_text())
        (out / RECORD).write_text(json.dumps({**record, ADAPTER_KEY: model_fingerprint(adapter)}))
    return out


def write_model_exports(project: Path, tiny_model_dir: Path, **exports: Path) -> None:
    """The tiny model's OpenVINO exports (``fp32=..., int8=...``) where ``make models`` leaves
    them, so a pipeline run serves the teacher, judge and base student without exporting."""
    import shutil

    from product_descgen.models import openvino_cache_dir

    for weights, exported in exports.items():
        target = openvino_cache_dir({"path": tiny_model_dir}, project / "data/06_models", weights)
        shutil.copytree(exported, target)


def serve_student_in_float32(project: Path) -> None:
    """conf/local: the student served from the float32 export the fixtures write."""
    from tests.pipelines.helpers import override_connection

    connection = {"backend": "openvino", "weights": "fp32", "batch_size": 4}
    override_connection(project, "catalog_llm.yml", "student_llm", connection, "student")


def write_upstream_reports(project: Path) -> None:
    """What data_prep, teacher_generation and finetune leave for the reporting pipeline."""
    data = project / "data"
    summary = {"raw_rows": 6, "kept": 5, "quarantined": 1,
               "quarantined_by_reason": {"missing_title": 1},
               "splits": {"train": 3, "validation": 1, "test": 1}}  # fmt: skip
    (data / "08_reporting" / "data_prep_summary.json").write_text(json.dumps(summary))
    inputs = pd.DataFrame({"product_id": ["a", "b", "c", "d", "e"], "split": "train"})
    inputs.to_parquet(data / "05_model_input" / "teacher_inputs.parquet")
    pd.DataFrame(
        {"product_id": ["e"], "split": ["train"], "reasons": ["truncated,markup"],
         "detail": ["..."], "draft": ["d"], "text": ["t"]}
    ).to_parquet(data / "07_model_output" / "teacher_rejections.parquet")  # fmt: skip
    for split, n in (("train", 3), ("validation", 1)):
        pd.DataFrame({"product_id": [f"{split}{i}" for i in range(n)]}).to_parquet(
            data / "05_model_input" / f"distill_{split}.parquet"
        )
    history = pd.DataFrame(
        {"epoch": [1, 2], "train_loss": [2.0, 1.5], "validation_loss": [2.2, 1.9],
         "opening_share": [0.5, 0.25], "repeated_phrase_share": [0.5, 0.0],
         "format_violation_share": [0.25, 0.0], "top_opening": ["this item is", "a red"],
         "top_phrase": ["is made for busy", ""], "flags": ["same_opening", ""]}
    )  # fmt: skip
    history.to_parquet(data / "08_reporting" / "training_history.parquet")
    vices = {"epochs": 2, "flagged_epochs": [{"epoch": 1, "flags": ["same_opening"]}]}
    (data / "08_reporting" / "vice_report.json").write_text(json.dumps(vices))


def write_model_inputs(project: Path) -> pd.DataFrame:
    """data_prep's model inputs of the demo catalogue where data_prep writes them: describe
    checks new products against them (``reference_catalogue``)."""
    from product_descgen.datasets import JSONLinesDataset
    from product_descgen.pipelines.data_prep.nodes import (
        build_model_inputs,
        clean_catalogue,
        ingest_catalogue,
    )
    from product_descgen.prep.config import DataPrepParams
    from product_descgen.project_config import load_project_params

    params = DataPrepParams.model_validate(load_project_params(root=project)["data_prep"])
    raw = JSONLinesDataset(str(project / "data/01_raw/products.jsonl")).load()
    cleaned, _ = clean_catalogue(ingest_catalogue(raw, params)[0], params)
    inputs = build_model_inputs(cleaned, params)
    inputs.to_parquet(project / "data/04_feature/model_inputs.parquet")
    return inputs
