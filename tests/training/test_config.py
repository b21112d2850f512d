import pytest

from product_descgen.project_config import load_project_params
from product_descgen.training import config as training_config
from product_descgen.training import ludwig_compat
from product_descgen.training.config import (
    FinetuneParams,
    auto_compute_dtype,
    build_ludwig_config,
    cpu_has_bf16,
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


def test_a_misspelt_ludwig_key_fails_naming_the_key_ludwig_would_drop(params, tiny_model_dir):
    trainer = {**params.ludwig["trainer"], "epochz": 1}
    bad = params.model_copy(update={"ludwig": {**params.ludwig, "trainer": trainer}})
    with pytest.raises(
        ValueError, match=r"unknown key finetune\.ludwig\.trainer\.epochz \(did you mean epochs\?\)"
    ):
        build_ludwig_config(bad, str(tiny_model_dir), COLUMNS)


@pytest.mark.parametrize(
    "block",
    [
        {"backend": {"type": "local", "credentials": {"s3": {"key": "k"}}}},  # free-form
        {"model_parameters": {"neftune_noise_alpha": 0}},  # a default Ludwig does not echo
        {"trainer": {"type": "finetune", "reduce_learning_rate_on_plateau": 0.5}},  # deprecated
    ],
)
def test_settings_ludwig_accepts_are_not_called_unknown(params, tiny_model_dir, block):
    ludwig = {**params.ludwig, **block}
    build_ludwig_config(params.model_copy(update={"ludwig": ludwig}), str(tiny_model_dir), COLUMNS)


def test_ludwig_settings_below_zero_fail_before_training(params, tiny_model_dir):
    trainer = {**params.ludwig["trainer"], "epochs": -2, "learning_rate": -0.001}
    bad = params.model_copy(update={"ludwig": {**params.ludwig, "trainer": trainer}})
    with pytest.raises(
        ValueError, match=r"trainer\.epochs is -2: it must be above 0; .*learning_rate is -0\.001"
    ):
        build_ludwig_config(bad, str(tiny_model_dir), COLUMNS)
    auto = {**params.ludwig["trainer"], "batch_size": "auto"}  # Ludwig's own choice stays valid
    build_ludwig_config(
        params.model_copy(update={"ludwig": {**params.ludwig, "trainer": auto}}),
        str(tiny_model_dir), COLUMNS,
    )  # fmt: skip


def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path):
    with_bf16 = tmp_path / "zen4"
    with_bf16.write_text("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    amx = tmp_path / "sapphire_rapids"
    amx.write_text("flags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    without = tmp_path / "skylake"
    without.write_text("flags\t\t: fpu avx512f avx512bw avx512_vnni\n")
    assert cpu_has_bf16(with_bf16) and cpu_has_bf16(amx)
    assert not cpu_has_bf16(without)
    assert not cpu_has_bf16(tmp_path / "no_such_file")  # not Linux: float32, the safe choice


@pytest.mark.parametrize(
    ("cuda", "gpu_bf16", "cpu_bf16", "expected"),
    [
        (True, True, False, "bfloat16"),
        (True, False, True, "float16"),  # a GPU without bf16 (T4, V100): QLoRA's float16
        (False, False, True, "bfloat16"),
        (False, False, False, "float32"),
    ],
)
def test_auto_compute_dtype_follows_the_hardware(monkeypatch, cuda, gpu_bf16, cpu_bf16, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: gpu_bf16)
    monkeypatch.setattr(training_config, "cpu_has_bf16", lambda *_: cpu_bf16)
    assert auto_compute_dtype() == expected


def with_compute_dtype(params: FinetuneParams, dtype: str) -> FinetuneParams:
    quantization = {**params.ludwig["quantization"], "bnb_4bit_compute_dtype": dtype}
    return params.model_copy(update={"ludwig": {**params.ludwig, "quantization": quantization}})


def test_auto_compute_dtype_is_resolved_in_the_config_ludwig_gets(params, tiny_model_dir):
    auto = with_compute_dtype(params, "auto")
    config = build_ludwig_config(auto, str(tiny_model_dir), COLUMNS)
    assert config["quantization"]["bnb_4bit_compute_dtype"] == auto_compute_dtype()
    assert auto.ludwig["quantization"]["bnb_4bit_compute_dtype"] == "auto"  # not mutated
    fixed = with_compute_dtype(params, "float16")
    config = build_ludwig_config(fixed, str(tiny_model_dir), COLUMNS)
    assert config["quantization"]["bnb_4bit_compute_dtype"] == "float16"


@pytest.mark.parametrize("env", [None, "gpu", "cluster"])
def test_shipped_learning_rate_decays_once_over_the_run(env, tiny_model_dir):
    """Through Ludwig's own scheduler, 12 epochs of 10 steps: after warm-up the rate never
    rises (Ludwig's ``cosine`` without ``t_0`` restarts at every epoch)."""
    import torch
    from ludwig.modules.lr_scheduler import LRScheduler
    from ludwig.schema.model_types.base import ModelConfig

    ludwig_compat.apply()
    params = FinetuneParams.model_validate(load_project_params(env)["finetune"])
    trainer = ModelConfig.from_dict(build_ludwig_config(params, str(tiny_model_dir))).trainer
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=trainer.learning_rate)
    epochs, steps_per_epoch = 12, 10
    scheduler = LRScheduler(
        trainer.learning_rate_scheduler, optimizer, steps_per_epoch, epochs * steps_per_epoch
    )
    rates = []
    for _ in range(epochs * steps_per_epoch):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    peak = rates.index(max(rates))
    assert peak < steps_per_epoch  # the end of the warm-up
    after = rates[peak:]
    assert all(later <= earlier for earlier, later in zip(after, after[1:], strict=False))
    assert rates[-1] < trainer.learning_rate / 10
