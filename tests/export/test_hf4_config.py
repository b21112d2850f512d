import json

import pytest

from product_descgen.export.hf4_config import hf4_config, stage_for_hf4


def test_one_rope_set_becomes_theta_and_no_scaling():
    config = {"model_type": "llama", "rope_parameters": {"rope_theta": 1e5, "rope_type": "default"}}
    assert hf4_config(config) == {"model_type": "llama", "rope_theta": 1e5, "rope_scaling": None}


def test_scaled_rope_keeps_its_scaling():
    params = {"rope_theta": 5e5, "rope_type": "llama3", "factor": 8.0}
    out = hf4_config({"rope_parameters": params})
    assert out["rope_theta"] == 5e5
    assert out["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0}


def test_gemma3_layer_types_map_to_global_and_local_theta():
    config = {
        "model_type": "gemma3_text",
        "rope_parameters": {
            "full_attention": {"rope_theta": 1e6, "rope_type": "default"},
            "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"},
        },
    }
    out = hf4_config(config)
    assert (out["rope_theta"], out["rope_local_base_freq"], out["rope_scaling"]) == (1e6, 1e4, None)
    assert "rope_parameters" not in out


def test_unknown_layer_types_are_refused_not_guessed():
    with pytest.raises(ValueError, match="not understood"):
        hf4_config({"rope_parameters": {"chunked_attention": {"rope_theta": 1.0}}})


def test_a_config_without_rope_parameters_is_unchanged():
    config = {"model_type": "llama", "rope_theta": 1e4}
    assert hf4_config(config) == config


def test_staging_links_every_file_and_rewrites_the_config(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"rope_parameters": {"rope_theta": 2.0}}))
    (model / "model.safetensors").write_bytes(b"weights")
    staged = stage_for_hf4(model, tmp_path / "staged")
    assert (staged / "model.safetensors").resolve() == (model / "model.safetensors").resolve()
    assert json.loads((staged / "config.json").read_text())["rope_theta"] == 2.0
    assert "rope_parameters" in json.loads((model / "config.json").read_text())  # untouched
