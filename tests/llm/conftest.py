"""Fixtures shared by the LLM tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter on q/v with random (non-zero) B, trained-adapter-like, on the nf4 base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_compute_dtype=torch.float32)  # fmt: skip
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), quantization_config=config)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)  # fmt: skip
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, lora).save_pretrained(out)
    return str(out)
