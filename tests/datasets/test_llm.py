import pytest
from kedro.io import DataCatalog, DatasetError
from pydantic import ValidationError

from product_descgen.callstore import CallStore
from product_descgen.datasets import CallStoreDataset, LLMConnectionDataset
from product_descgen.llm.backends import make_backend
from product_descgen.llm.openai_backend import OpenAIBackend
from product_descgen.llm.types import GenerationSettings
from product_descgen.models import model_fingerprint


def test_connection_merges_credentials_from_the_catalog_and_hides_the_key():
    catalog = DataCatalog.from_config(
        {
            "teacher_llm": {
                "type": "product_descgen.datasets.LLMConnectionDataset",
                "connection": {"backend": "openai", "model": "llama", "concurrency": 4},
                "credentials": "teacher",
            }
        },
        credentials={"teacher": {"base_url": "http://127.0.0.1:1/v1", "api_key": "sk-secret"}},
    )
    connection = catalog.load("teacher_llm")
    assert connection.base_url == "http://127.0.0.1:1/v1" and connection.api_key == "sk-secret"
    assert "sk-secret" not in repr(catalog["teacher_llm"])
    backend = make_backend(connection, "unused", GenerationSettings())
    assert isinstance(backend, OpenAIBackend) and backend.concurrency == 4


def test_bad_connection_setting_fails_when_the_catalog_is_built():
    with pytest.raises(ValidationError, match="backend"):
        LLMConnectionDataset(connection={"backend": "vllm"})


def test_openai_backend_without_base_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    connection = LLMConnectionDataset(connection={"backend": "openai", "model": "m"}).load()
    with pytest.raises(ValueError, match="base_url"):
        make_backend(connection, "m", GenerationSettings())


def test_base_url_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:2/v1")
    connection = LLMConnectionDataset(connection={"backend": "openai", "model": "m"}).load()
    assert make_backend(connection, "m", GenerationSettings()).base_url == "http://127.0.0.1:2/v1"


def test_call_store_dataset_loads_a_store_and_refuses_saves(tmp_path):
    dataset = CallStoreDataset(filepath=str(tmp_path / "sub" / "calls.sqlite"))
    assert isinstance(dataset.load(), CallStore)
    with pytest.raises(DatasetError):
        dataset.save(None)


def test_model_datasets_say_what_to_run_when_empty(tmp_path):
    from product_descgen.datasets import LudwigModelDataset, PeftAdapterDataset

    for cls in (LudwigModelDataset, PeftAdapterDataset):
        dataset = cls(filepath=str(tmp_path / cls.__name__))
        assert not dataset.exists()
        with pytest.raises(DatasetError, match="finetune"):
            dataset.load()


def test_connection_dataset_resolves_its_model_for_its_backend(tiny_model_dir, tmp_path):
    from product_descgen.datasets import ModelDirDataset

    spec = {"path": str(tiny_model_dir)}
    transformers = LLMConnectionDataset(
        connection={"backend": "transformers"}, model=spec, cache_dir=str(tmp_path)
    ).load()
    assert transformers.model_dir == str(tiny_model_dir)
    version = model_fingerprint(tiny_model_dir)
    assert transformers.model_id == f"{tiny_model_dir.name}|transformers none float32|{version}"
    assert ModelDirDataset(model=spec, cache_dir=str(tmp_path)).load() == str(tiny_model_dir)
    served = LLMConnectionDataset(connection={"backend": "openai", "model": "teacher"}).load()
    assert served.model_dir is None and served.model_id == "teacher"  # a server needs no spec
    with pytest.raises(DatasetError, match="model spec"):
        LLMConnectionDataset(connection={"backend": "transformers"}).load()


def test_a_bad_model_spec_fails_when_the_catalog_is_built():
    with pytest.raises(ValidationError, match="exactly one"):
        LLMConnectionDataset(connection={"backend": "openvino"}, model={"path": "a", "hub_id": "b"})


def test_a_checkpoint_replaced_at_its_path_gets_another_model_id(tmp_path):
    """Cache keys hold the model id: a model replaced in place must not be answered from the
    old one's cached calls."""
    model = tmp_path / "my-teacher"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"old weights")
    dataset = LLMConnectionDataset(
        connection={"backend": "transformers"}, model={"path": str(model)}
    )
    before = dataset.load().model_id
    assert dataset.load().model_id == before  # nothing changed: the same calls
    (model / "model.safetensors").write_bytes(b"new weights, longer")
    assert dataset.load().model_id != before
    given = LLMConnectionDataset(connection={"backend": "transformers", "model_dir": str(model)})
    assert given.load().model_version == model_fingerprint(model)


def test_the_same_model_moved_copied_or_touched_keeps_its_model_id(tmp_path):
    """Cached answers follow the model's files, not where they lie or when they were written:
    moving a checkout or restoring a backup must not pay for every call again."""
    import os
    import shutil

    model = tmp_path / "a" / "my-teacher"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")

    def model_id(path):
        return (
            LLMConnectionDataset(connection={"backend": "transformers"}, model={"path": str(path)})
            .load()
            .model_id
        )

    before = model_id(model)
    os.utime(model / "config.json", (1, 1))  # touched
    assert model_id(model) == before
    copy = tmp_path / "b" / "my-teacher"
    shutil.copytree(model, copy)  # another place, new modification times
    assert model_id(copy) == before
    (copy / "model.safetensors").write_bytes(b"weightz")  # same size, other bytes
    assert model_id(copy) != before


def test_an_openai_connection_without_the_served_model_name_fails_when_the_catalog_is_built():
    """Without it every call was sent (and paid) with no model, then none could be stored."""
    with pytest.raises(ValidationError, match="the openai backend needs model"):
        LLMConnectionDataset(connection={"backend": "openai", "base_url": "http://127.0.0.1:9/v1"})


def test_read_only_inputs_exist_so_the_inputs_check_needs_no_other_pipeline(tmp_path, caplog):
    """Without ``_exists`` Kedro warned 'exists() not implemented' and answered False, so
    every run built every pipeline to learn who writes them."""
    from product_descgen.datasets import ModelDirDataset, RatingsFolderDataset

    inputs = [
        LLMConnectionDataset(connection={"backend": "openai", "model": "m"}),
        CallStoreDataset(filepath=str(tmp_path / "calls.sqlite")),
        ModelDirDataset(model={"path": str(tmp_path / "model")}),
        RatingsFolderDataset(path=str(tmp_path / "ratings"), dataset="text.TextDataset"),
    ]
    with caplog.at_level("WARNING"):
        assert all(dataset.exists() for dataset in inputs)
    assert "not implemented" not in caplog.text
