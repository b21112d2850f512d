import pytest

from product_descgen.project_config import load_project_params
from product_descgen.training import ludwig_compat
from product_descgen.training.config import (
    FinetuneParams,
    build_ludwig_config,
    template_fields,
)

COLUMNS = ["product_id", "input_text", "target"]


@pytest.fixture(scope="module")
def params() -> FinetuneParams:
    ludwig_compat.apply()
    return FinetuneParams.model_validate(load_project_params()["finetune"])


def test_template_fields():
    assert template_fields("### {input_text}\n{title} {{literal}}") == {"input_text", "title"}


def test_shipped_params_build_a_valid_qlora_config(params, tiny_model_dir):
    config = build_ludwig_config(params, str(tiny_model_dir), COLUMNS)
    assert config["model_type"] == "llm" and config["base_model"] == str(tiny_model_dir)
    assert config["quantization"]["bits"] == 4 and config["adapter"]["type"] == "lora"
    assert config["input_features"] == [{"name": "input_text", "type": "text"}]
    assert "{input_text}" in config["prompt"]["template"]
    assert params.ludwig.get("base_model") is None  # the parameters are not mutated


def test_quantization_switch(params, tiny_model_dir):
    plain = params.model_copy(update={"quantization": False})
    assert "quantization" not in build_ludwig_config(plain, str(tiny_model_dir), COLUMNS)


def test_template_naming_a_missing_column_fails_before_training(params, tiny_model_dir):
    bad = params.model_copy(update={"prompt_template": "{input_text} {brand}"})
    with pytest.raises(ValueError, match=r"\['brand'\]"):
        build_ludwig_config(bad, str(tiny_model_dir), COLUMNS)


def test_missing_base_model_path_fails_before_training(params, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build_ludwig_config(params, str(tmp_path / "nope"), COLUMNS)


def test_bad_ludwig_setting_fails_with_ludwigs_message(params, tiny_model_dir):
    bad = params.model_copy(
        update={"ludwig": {**params.ludwig, "adapter": {"type": "lora", "r": -1}}}
    )
    with pytest.raises(ValueError, match="finetune.ludwig"):
        build_ludwig_config(bad, str(tiny_model_dir), COLUMNS)
