import json

import numpy as np
import pytest
from gguf import GGUFReader
from safetensors.torch import load_file

from product_descgen.export.gguf import export_lora_gguf
from product_descgen.export.student import GGUF_FILE, student_gguf
from tests.tiny_models import build_tiny_adapter, smollm2_gguf

pytestmark = pytest.mark.slow

HEADS = 4  # tests.tiny_models.build_tiny_llama


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "adapter")


def _field(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def _rotary_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face's rotary row order (halves) in GGML's (pairs), as llama.cpp converts q/k."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def test_gguf_lora_holds_peft_weights_under_llama_cpp_names(adapter_dir, tiny_model_dir):
    out = export_lora_gguf(adapter_dir, tiny_model_dir, adapter_dir.parent / "x" / "lora.gguf")
    reader = GGUFReader(out)
    assert _field(reader, "general.type") == "adapter"
    assert _field(reader, "adapter.type") == "lora"
    assert _field(reader, "adapter.lora.alpha") == pytest.approx(8.0)

    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    peft = {k: v.numpy() for k, v in load_file(adapter_dir / "adapter_model.safetensors").items()}
    expected = {
        f"blk.{i}.attn_{proj[0]}.weight.lora_{ab}"
        for i in range(2)
        for proj in ("q_proj", "v_proj")
        for ab in "ab"
    }
    assert set(tensors) == expected
    # Every adapted tensor names a tensor of the real SmolLM2 GGUF that llama.cpp serves it with.
    shipped = {t.name for t in GGUFReader(smollm2_gguf()).tensors}
    assert {name.rsplit(".", 1)[0] for name in tensors} <= shipped

    for i in range(2):
        prefix = f"base_model.model.model.layers.{i}.self_attn"
        v_a, v_b = peft[f"{prefix}.v_proj.lora_A.weight"], peft[f"{prefix}.v_proj.lora_B.weight"]
        np.testing.assert_array_equal(tensors[f"blk.{i}.attn_v.weight.lora_a"], v_a)
        np.testing.assert_array_equal(tensors[f"blk.{i}.attn_v.weight.lora_b"], v_b)
        q_a, q_b = peft[f"{prefix}.q_proj.lora_A.weight"], peft[f"{prefix}.q_proj.lora_B.weight"]
        np.testing.assert_array_equal(tensors[f"blk.{i}.attn_q.weight.lora_a"], q_a)
        np.testing.assert_array_equal(
            tensors[f"blk.{i}.attn_q.weight.lora_b"], _rotary_rows(q_b, HEADS)
        )


def test_student_gguf_names_its_base_and_leaves_nothing_half_written(adapter_dir, tiny_model_dir):
    out_dir = student_gguf(adapter_dir)
    assert (out_dir / GGUF_FILE).is_file()
    assert (out_dir / "base_model.txt").read_text().strip() == str(tiny_model_dir)
    assert not [p for p in out_dir.iterdir() if p.name.startswith("lora-gguf-")]
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir)


def test_bad_inputs_are_clear_errors(tmp_path, adapter_dir, tiny_model_dir):
    with pytest.raises(ValueError, match="outtype"):
        export_lora_gguf(adapter_dir, tiny_model_dir, tmp_path / "a.gguf", "q4_0")
    with pytest.raises(FileNotFoundError, match="not a peft adapter"):
        export_lora_gguf(tmp_path, tiny_model_dir, tmp_path / "a.gguf")
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model"):
        export_lora_gguf(adapter_dir, tmp_path, tmp_path / "a.gguf")
