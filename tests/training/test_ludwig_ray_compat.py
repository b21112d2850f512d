"""The Ray backend fixes that can be shown without a cluster (the rest: the Ray finetune test,
tests/pipelines/finetune/test_ray.py, which fails without them)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from product_descgen.training import ludwig_ray_compat


def frames():
    import dask.dataframe as dd

    def frame(n: int, npartitions: int):
        return dd.from_pandas(pd.DataFrame({"x": range(n)}), npartitions=npartitions)

    return frame(12, 3), frame(4, 1), frame(4, 2)


def test_ludwigs_concat_trains_on_every_dask_split_and_the_fix_keeps_them_apart():
    import dask.dataframe as dd
    from ludwig.constants import SPLIT
    from ludwig.data import concatenate_datasets

    train, validation, test = frames()
    fixed = ludwig_ray_compat.tag_splits([train, validation, test], dd.concat).compute()
    assert fixed[SPLIT].value_counts().to_dict() == {0: 12, 1: 4, 2: 4}
    original = concatenate_datasets.concatenate_df
    if original.__module__ != concatenate_datasets.__name__:
        pytest.skip("Ludwig's concatenate_df is already replaced in this process")
    backend = SimpleNamespace(df_engine=SimpleNamespace(df_lib=dd))
    broken = original(train, validation, test, backend).compute()
    assert broken[SPLIT].value_counts().to_dict() == {0: 20}  # the defect: all in training


def test_only_the_adapter_weights_travel_back():
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2)  # fmt: skip
    torch.manual_seed(0)
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=2, target_modules=["q_proj"]))
    state = ludwig_ray_compat.trainable_state(model)
    assert state and all("lora_" in key for key in state)
    assert set(state) == {n for n, p in model.named_parameters() if p.requires_grad}


def test_the_finetune_trainer_is_registered_for_llms_on_ray():
    from ludwig.trainers.registry import get_llm_ray_trainers_registry

    ludwig_ray_compat.apply()
    assert ludwig_ray_compat.affected()  # the pinned Ludwig: drop the module when this fails
    assert "finetune" in get_llm_ray_trainers_registry()


def test_several_ray_workers_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="num_workers: 1"):
        ludwig_ray_compat.check_backend({"type": "ray", "trainer": {"num_workers": 2}})
    ludwig_ray_compat.check_backend({"type": "ray", "trainer": {"num_workers": 1}})
