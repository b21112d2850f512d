"""The run's time per pipeline is summed by node tag and logged at the end."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from product_descgen.hooks import PipelineTimingHooks, RunOutputsHooks
from product_descgen.project_config import load_project_config


def test_time_is_summed_per_pipeline_tag(caplog):
    hooks = PipelineTimingHooks()
    hooks.before_pipeline_run(run_params={})
    for name, tags in (("a", {"data_prep"}), ("b", {"finetune"}), ("c", {"finetune"})):
        node = SimpleNamespace(name=name, tags=tags)
        hooks.before_node_run(node=node)
        hooks.after_node_run(node=node)
    with caplog.at_level(logging.INFO, logger="product_descgen.hooks"):
        hooks.after_pipeline_run()
    [record] = caplog.records
    assert "data_prep" in record.getMessage() and "finetune" in record.getMessage()
    assert set(hooks._seconds) == {"data_prep", "finetune"}


def test_parameters_are_flattened_into_names_mlflow_accepts():
    from mlflow.utils.validation import validate_param_and_metric_name
    from pydantic import BaseModel

    from product_descgen.hooks import flat_params

    class Trainer(BaseModel):
        learning_rate: float = 0.001
        modules: list[str] = ["q", "v"]

    params = {
        "finetune": Trainer(),  # a block Kedro has already validated
        "data_prep": {"audience": {"per_category": {"Kitchen & Dining": "home cooks"}}},
        "seed": 7,
    }
    flat = flat_params(params)
    assert flat == {
        "cfg.finetune.learning_rate": "0.001",
        "cfg.finetune.modules": "['q', 'v']",
        "cfg.data_prep.audience.per_category.Kitchen _ Dining": "home cooks",
        "cfg.seed": "7",
    }
    assert all(validate_param_and_metric_name(key) for key in flat)
    assert flat_params({}) == {}


def test_the_run_ends_naming_where_the_report_and_descriptions_are(caplog):
    """Paths from the project's own catalog (globals resolved); only what this run saved."""
    hooks = RunOutputsHooks()
    catalog = load_project_config("catalog")
    hooks.after_context_created(context=SimpleNamespace(config_loader={"catalog": catalog}))
    hooks.before_pipeline_run(run_params={})
    for name in ("eval_metrics", "report_html"):
        hooks.after_dataset_saved(dataset_name=name)
    with caplog.at_level(logging.INFO, logger="product_descgen.hooks"):
        hooks.after_pipeline_run()
    assert [r.getMessage() for r in caplog.records] == [
        "Written for readers: report_html -> data/08_reporting/report.html"
    ]


def test_an_interrupted_run_is_recorded_as_killed(tmp_path, monkeypatch):
    """Ctrl-C reaches no Kedro hook: without this, MLflow's exit handler ended the open run as
    FINISHED, and its partial metrics compared as a complete run's."""
    import atexit

    import mlflow

    from product_descgen.hooks import MlflowInterruptHooks

    registered = []  # ours: MLflow registers exit handlers of its own (telemetry)
    monkeypatch.setattr(
        atexit, "register",
        lambda f, *a, **k: registered.append(f)
        if isinstance(getattr(f, "__self__", None), MlflowInterruptHooks)
        else None,
    )  # fmt: skip
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("interrupted")  # not an earlier test's experiment, unknown here
    hooks = MlflowInterruptHooks()
    statuses = []

    def mlflow_exit():  # MLflow's own exit handler: ends what is open as FINISHED
        while mlflow.active_run() is not None:
            mlflow.end_run()

    try:
        for interrupted in (True, False):
            run = mlflow.start_run()
            hooks.before_pipeline_run()
            mlflow.start_run(run_id=run.info.run_id, nested=True)  # kedro-mlflow's, per node
            if not interrupted:
                hooks.after_pipeline_run()
                mlflow.end_run()  # kedro-mlflow's, at the pipeline's end
            for handler in [*registered, mlflow_exit]:
                handler()  # what the process does at exit
            statuses.append(mlflow.get_run(run.info.run_id).info.status)
    finally:
        mlflow.set_tracking_uri(previous_uri)
    assert statuses == ["KILLED", "FINISHED"]
    assert len(registered) == 1  # one exit handler, however many runs


def test_sigterm_during_a_run_interrupts_it_as_ctrl_c_does(monkeypatch):
    """timeout, docker stop and schedulers send SIGTERM: it ended the process at once, with no
    resume message and the MLflow run left RUNNING."""
    import atexit
    import signal

    from product_descgen.hooks import MlflowInterruptHooks

    monkeypatch.setattr(atexit, "register", lambda *a, **k: None)  # not at the tests' exit
    hooks, before = MlflowInterruptHooks(), signal.getsignal(signal.SIGTERM)
    try:
        hooks.before_pipeline_run()
        assert signal.getsignal(signal.SIGTERM) == hooks.terminate_as_interrupt
        handler = signal.getsignal(signal.SIGTERM)  # called as the signal would call it: a
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):  # real one ends the tests if
            handler(signal.SIGTERM, None)  # the handler is missing (checked with timeout -s TERM)
        assert signal.getsignal(signal.SIGTERM) is before  # a second SIGTERM acts as before
        hooks.before_pipeline_run()  # Ctrl-C: no hook ends the run, the handler stays
        hooks.before_pipeline_run()  # a later run in this process (a notebook)
        hooks.after_pipeline_run()
        assert signal.getsignal(signal.SIGTERM) is before  # not lost to the run's own
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_run_needing_cuda_on_a_machine_without_it_fails_before_any_node(monkeypatch):
    """--env gpu on a CPU machine ran data_prep, then failed minutes later at a model."""
    import pytest
    import torch
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline

    from product_descgen.datasets import LLMConnectionDataset
    from product_descgen.hooks import DeviceCheckHooks

    def connection(**settings):
        return LLMConnectionDataset(connection={"backend": "transformers", **settings})

    catalog = DataCatalog({"student_llm": connection(device="cuda"), "cpu_llm": connection()})
    uses = Pipeline([Node(lambda a, b: a, ["student_llm", "cpu_llm"], "out", name="n")])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"^student_llm \(device: cuda\) run on CUDA and torch"):
        DeviceCheckHooks().before_pipeline_run(uses, catalog)
    DeviceCheckHooks().before_pipeline_run(Pipeline([]), catalog)  # not used: no GPU needed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    DeviceCheckHooks().before_pipeline_run(uses, catalog)


def test_a_run_that_trains_on_cuda_on_a_machine_without_it_fails_before_any_node(monkeypatch):
    """--env gpu --pipeline finetune on a CPU machine trained 12 epochs on the CPU, silently."""
    import pytest
    import torch
    from kedro.io import DataCatalog, MemoryDataset

    from product_descgen.hooks import DeviceCheckHooks
    from product_descgen.pipelines.finetune.pipeline import create_pipeline
    from product_descgen.training.config import FinetuneParams

    def catalog(device: str) -> DataCatalog:  # as Kedro validates it for the nodes
        return DataCatalog({"params:finetune": MemoryDataset(FinetuneParams(device=device))})

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    finetune = create_pipeline()
    with pytest.raises(RuntimeError, match=r"^the student's training \(finetune.device: cuda\)"):
        DeviceCheckHooks().before_pipeline_run(finetune, catalog("cuda"))
    DeviceCheckHooks().before_pipeline_run(finetune, catalog("auto"))
    exports = finetune.only_nodes("export_student_gguf_node")  # trains nothing
    DeviceCheckHooks().before_pipeline_run(exports, catalog("cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    DeviceCheckHooks().before_pipeline_run(finetune, catalog("cuda"))


def test_inputs_check_builds_the_other_pipelines_only_when_an_input_is_missing(
    monkeypatch, tmp_path
):
    """Every run imported all pipeline modules to learn who writes what (1-2 s each start)."""
    import pytest
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline
    from kedro_datasets.pandas import ParquetDataset

    from product_descgen import hooks

    def catalog(*present: str) -> DataCatalog:
        for path in tmp_path.iterdir():
            path.unlink()
        for name in present:
            (tmp_path / f"{name}.parquet").write_bytes(b"")
        names = ("distill_train", "raw_extra")
        return DataCatalog(
            {n: ParquetDataset(filepath=str(tmp_path / f"{n}.parquet")) for n in names}
        )

    uses = Pipeline([Node(lambda a, b: a, ["distill_train", "raw_extra"], "out", name="n")])
    monkeypatch.setattr(hooks, "written_by", lambda: pytest.fail("built every pipeline"))
    hooks.InputsCheckHooks().before_pipeline_run({}, uses, catalog("distill_train", "raw_extra"))
    monkeypatch.setattr(hooks, "written_by", lambda: {"distill_train": ["teacher_generation"]})
    with pytest.raises(RuntimeError, match=r"distill_train \(written by teacher_generation\)"):
        hooks.InputsCheckHooks().before_pipeline_run({"env": "gpu"}, uses, catalog("raw_extra"))
    with pytest.raises(RuntimeError, match=r"--pipeline teacher_generation --env gpu$"):
        hooks.InputsCheckHooks().before_pipeline_run({"env": "gpu"}, uses, catalog())
    # a missing raw input (no pipeline writes it) is left to Kedro's own error at its load
    hooks.InputsCheckHooks().before_pipeline_run({}, uses, catalog("distill_train"))
