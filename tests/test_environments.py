"""Every shipped environment loads as `kedro run --env ENV` sees it, and its typed blocks
validate; an environment's parameters and globals merge into base's key by key."""

from __future__ import annotations

import pytest
from kedro.config import MissingConfigException
from kedro.io import DataCatalog

from product_descgen.datasets import LLMConnectionDataset
from product_descgen.evaluation.config import DescribeParams, EvaluationParams
from product_descgen.models import ModelsParams
from product_descgen.pipelines.reporting.nodes import ReportingParams
from product_descgen.prep.config import DataPrepParams
from product_descgen.project_config import load_project_config, load_project_params
from product_descgen.runtime import RuntimeParams
from product_descgen.teacher.config import TeacherParams
from product_descgen.training.config import FinetuneParams

BLOCKS = {
    "runtime": RuntimeParams, "data_prep": DataPrepParams,
    "teacher_generation": TeacherParams, "finetune": FinetuneParams,
    "evaluation": EvaluationParams, "describe": DescribeParams, "reporting": ReportingParams,
}  # fmt: skip


ENVS = [None, "flipkart", "gpu", "ray", "cluster"]


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_validates(env):
    params = load_project_params(env)
    for name, model in BLOCKS.items():
        model.model_validate(params[name])
    ModelsParams.model_validate(load_project_config("globals", env)["models"])
    # building the catalog validates every dataset's settings (connections, model specs)
    try:
        credentials = load_project_config("credentials", env)
    except MissingConfigException:  # none in this environment (Kedro's run allows that too)
        credentials = {}
    catalog = DataCatalog.from_config(load_project_config("catalog", env), credentials)
    assert {"teacher_llm", "student_llm", "judge_llm", "student_base_model"} <= set(catalog.keys())
    # an in-process connection loads a local model: it names one (conf/gpu's student_llm did
    # not, and failed when evaluation loaded it, after the whole training)
    for name in catalog:
        dataset = catalog.get(name)
        if isinstance(dataset, LLMConnectionDataset) and dataset.connection.backend != "openai":
            assert dataset.model is not None or dataset.connection.model_dir, (env, name)
    # every dataset an environment replaces keeps its Kedro-Viz layer
    for name, entry in load_project_config("catalog", env).items():
        assert entry.get("metadata", {}).get("kedro-viz", {}).get("layer"), (env, name)


def test_an_environment_states_only_what_it_changes():
    base, gpu = load_project_params(), load_project_params("gpu")
    speed = EvaluationParams.model_validate(gpu["evaluation"]).speed
    generation = base["evaluation"]["student_generation"]  # gpu's globals change one key
    assert gpu["evaluation"]["student_generation"] == {**generation, "max_new_tokens": 256}
    assert speed.sample_size == base["evaluation"]["speed"]["sample_size"]
    assert all(m.gpu_memory_gb for m in speed.machines)  # a list is replaced whole
    models = load_project_config("globals", "gpu")["models"]
    assert models["cache_dir"] == load_project_config("globals")["models"]["cache_dir"]
    assert models["teacher"]["path"] and not models["teacher"]["gguf_package"]
    teacher = load_project_config("catalog", "gpu")["speed_teacher_llm"]
    assert teacher["connection"]["quantization"] == "int8"  # the speed test's 8-bit teacher


def _written_paths(env: str | None) -> set[str]:
    """Files and folders the environment's pipelines write (every catalog path but inputs)."""
    globals_ = load_project_config("globals", env)
    paths = set()
    for entry in load_project_config("catalog", env).values():
        path = entry.get("filepath") or entry.get("path")
        if path and not str(path).startswith((globals_["raw_dir"], "conf/", "../")):
            paths.add(str(path))
    params = load_project_params(env)
    return paths | {str(params["finetune"]["work_dir"])}


def test_each_catalogue_writes_under_its_own_data_root():
    """An environment for another catalogue or setting (its own data_root, and local_root for
    what must stay on the driver's disk) overlaps no other's outputs; conf/ray trains the demo
    catalogue on another backend, so it shares base's."""
    written = {env: _written_paths(env) for env in ENVS}
    for env, paths in written.items():
        globals_ = load_project_config("globals", env)
        roots = tuple(globals_[k] + "/" for k in ("data_root", "local_root") if k in globals_)
        assert paths and all(p.startswith(roots) for p in paths), env
    assert written["ray"] == written[None]
    separate = [env for env in ENVS if env != "ray"]
    for env in separate:
        for other in separate:
            if other != env:
                assert not written[env] & written[other], (env, other)


def test_the_cluster_keeps_its_call_stores_off_the_shared_disk():
    """SQLite's WAL mode needs a local filesystem: conf/cluster's data_root is a shared disk."""
    globals_ = load_project_config("globals", "cluster")
    catalog = load_project_config("catalog", "cluster")
    stores = {n: e["filepath"] for n, e in catalog.items() if n.endswith("_call_store")}
    assert set(stores) == {"teacher_call_store", "student_call_store", "judge_call_store"}
    assert all(p.startswith(globals_["local_root"] + "/") for p in stores.values())
    assert not any(p.startswith(globals_["data_root"]) for p in stores.values())
