import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from product_descgen.training.export import merge_adapter
from tests.tiny_models import build_tiny_adapter


def test_merged_model_matches_base_plus_adapter(tiny_model_dir, tmp_path):
    build_tiny_adapter(tiny_model_dir, tmp_path / "adapter")

    out = merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(out)
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(tmp_path / "adapter")
    )
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        assert torch.allclose(merged(ids).logits, reference(ids).logits, atol=1e-4)
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        assert not torch.allclose(merged(ids).logits, plain, atol=1e-4)
    assert (out / "tokenizer_config.json").is_file()


def test_missing_adapter_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        merge_adapter(tmp_path, tmp_path / "out")
