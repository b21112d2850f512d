"""Kedro hooks: wall time per pipeline, and where the run wrote what readers open, logged at the
end of every run; every parameter, flattened, in the run's MLflow record; an interrupted run
(Ctrl-C, or SIGTERM as ``timeout``, ``docker stop`` and batch schedulers send) recorded as
such."""

from __future__ import annotations

import atexit
import logging
import re
import signal
import threading
import time
from collections import defaultdict
from typing import Any, NoReturn

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel

logger = logging.getLogger(__name__)

PIPELINES = ("data_prep", "teacher_generation", "finetune", "evaluation", "describe", "reporting")


def refuse_run(message: str) -> NoReturn:
    """Stop a run before any node with ``message``. kedro-mlflow's hook (registered after the
    project's, so called first) has opened the run's MLflow record already, and Kedro calls no
    error hook for a refusal here: it is ended as FAILED, not left for MLflow's exit handler
    to close as FINISHED."""
    import mlflow

    while mlflow.active_run():
        mlflow.end_run("FAILED")
    raise RuntimeError(message)


class ConfigCheckHooks:
    """Fails the run before any node on keys nothing reads
    (:mod:`product_descgen.config_check`)."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from pathlib import Path

        from kedro.framework.project import settings

        from product_descgen.config_check import check_config

        conf_base = Path(context.project_path) / settings.CONF_SOURCE / "base"
        globals_ = context.config_loader["globals"]
        check_config(context.params, globals_, conf_base, context.env or "local")


TRAINING_NODE = "train_student_model_node"


class DeviceCheckHooks:
    """Fails a run before any node when a model it serves is set to run on CUDA (``device:
    cuda``, as ``--env gpu`` does) and torch sees no GPU: such a run went through its CPU stages
    first and failed minutes later (or in a server's retries); likewise a run that trains with
    ``finetune.device: cuda``, which Ludwig trained on the CPU without a word."""

    @hook_impl
    def before_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        from product_descgen.datasets import LLMConnectionDataset

        on_cuda = []
        for name in sorted(pipeline.datasets()):
            dataset = catalog.get(name) if name in catalog else None
            if isinstance(dataset, LLMConnectionDataset):
                connection = dataset.connection
                if connection.backend == "transformers" and connection.device == "cuda":
                    on_cuda.append(f"{name} (device: cuda)")
        if any(node.name == TRAINING_NODE for node in pipeline.nodes) and _trains_on_cuda(catalog):
            on_cuda.append("the student's training (finetune.device: cuda)")
        if on_cuda:
            import torch

            if not torch.cuda.is_available():
                refuse_run(
                    f"{', '.join(on_cuda)} run on CUDA and torch sees no GPU on "
                    "this machine: run on a GPU machine, or in an environment that serves them on "
                    "the CPU (the default, without --env gpu)"
                )


def _trains_on_cuda(catalog: Any) -> bool:
    """Whether ``finetune.device`` is ``cuda`` (Kedro hands the block over validated, as
    FinetuneParams, where a node's type hint asks for it)."""
    finetune = catalog.load("params:finetune") if "params:finetune" in catalog else {}
    device = finetune.get("device") if isinstance(finetune, dict) else finetune.device
    return device == "cuda"


class InputsCheckHooks:
    """Fails a run before any node when it needs an output of another pipeline that no run has
    written yet (``--pipeline teacher_generation`` before ``data_prep``): Kedro would fail at
    that dataset's load, naming a file rather than the pipeline to run first."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from kedro.io import MemoryDataset

        inputs = {name: catalog.get(name) for name in sorted(pipeline.inputs()) if name in catalog}
        absent = [
            name for name, dataset in inputs.items()
            if not isinstance(dataset, MemoryDataset) and not dataset.exists()
        ]  # fmt: skip
        if not absent:  # the usual run: no pipeline is built beyond the run's own
            return
        writers = written_by()
        missing = {name: writers[name] for name in absent if writers.get(name)}  # raw ones left
        if missing:
            first = [p for p in PIPELINES if any(p in w for w in missing.values())]
            env = f" --env {run_params['env']}" if run_params.get("env") else ""
            option = (
                f"--pipelines {','.join(first)}" if len(first) > 1 else f"--pipeline {first[0]}"
            )
            refuse_run(
                "this run needs outputs that no run has written yet: "
                + "; ".join(f"{n} (written by {' or '.join(w)})" for n, w in missing.items())
                + f". Run them first: kedro run {option}{env}"
            )


def written_by() -> dict[str, list[str]]:
    """Each dataset some pipeline writes, with the pipelines that write it (all of them: the
    registry holds only a run's own pipelines)."""
    import importlib

    writers: dict[str, list[str]] = defaultdict(list)
    for name in PIPELINES:
        module = importlib.import_module(f"product_descgen.pipelines.{name}.pipeline")
        for output in module.create_pipeline().all_outputs():
            writers[output].append(name)
    return writers


class RuntimeHooks:
    """Applies the ``runtime`` parameters (CPU threads) before any node runs."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from product_descgen.runtime import RuntimeParams, set_threads

        params = RuntimeParams.model_validate(context.params.get("runtime", {}))
        threads = params.resolved_threads()
        set_threads(threads)
        logger.info("Runtime: %d CPU thread(s) per process (runtime.threads: %s)", threads,
                    params.threads)  # fmt: skip


class PipelineTimingHooks:
    """Sums node wall time by pipeline (its tag) and logs the table after the run."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._seconds: dict[str, float] = defaultdict(float)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._seconds.clear()

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        seconds = time.perf_counter() - self._started.pop(node.name, time.perf_counter())
        tag = next((t for t in PIPELINES if t in node.tags), "other")
        self._seconds[tag] += seconds

    @hook_impl
    def after_pipeline_run(self) -> None:
        if self._seconds:
            lines = [f"{name:<20} {s:8.1f} s" for name, s in self._seconds.items()]
            total = sum(self._seconds.values())
            logger.info("Time per pipeline:\n%s\n%-20s %8.1f s", "\n".join(lines), "total", total)


# What a reader opens after a run (the report, describe's descriptions): named at its end.
READER_OUTPUTS = ("report_html", "descriptions")


def filepath_of(entry: dict[str, Any]) -> str | None:
    """A catalog entry's file, also when it wraps another dataset (MLflow's artifact dataset)."""
    inner = entry.get("dataset")
    return entry.get("filepath") or (inner.get("filepath") if isinstance(inner, dict) else None)


class RunOutputsHooks:
    """Logs, at the end of a run, where it wrote the outputs readers open (``READER_OUTPUTS``);
    their paths are read from the catalog's config then, only when the run saved one."""

    def __init__(self) -> None:
        self._config: Any = None
        self._saved: list[str] = []

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._config = context.config_loader

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._saved.clear()

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        if dataset_name in READER_OUTPUTS:
            self._saved.append(dataset_name)

    @hook_impl
    def after_pipeline_run(self) -> None:
        if not self._saved:
            return
        catalog = self._config["catalog"]
        for name in self._saved:
            path = filepath_of(catalog.get(name) or {})
            if path:
                logger.info("Written for readers: %s -> %s", name, path)


PREFIX = "cfg."  # kedro-mlflow logs node inputs under their own names: ours never collide


def flat_params(params: dict[str, Any]) -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"cfg.a.b": "1"}``, as MLflow takes them: characters its
    names refuse (``&`` in a category name, say) become ``_``, values are cut to its limit."""
    import pandas as pd
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    if not params:
        return {}
    plain = {  # blocks Kedro has already validated into their pydantic models
        name: block.model_dump(mode="json") if isinstance(block, BaseModel) else block
        for name, block in params.items()
    }
    flat = pd.json_normalize(plain, sep=".").iloc[0].to_dict()
    return {
        PREFIX + re.sub(r"[^/\w.\- ]", "_", key): str(value)[:MAX_PARAM_VAL_LENGTH]
        for key, value in flat.items()
    }


class MlflowParamsHooks:
    """Every parameter, flattened (``cfg.finetune.ludwig.trainer.learning_rate``), in the MLflow
    run kedro-mlflow opens, so runs compare by any setting. kedro-mlflow logs each node's
    ``params:`` inputs, but Kedro has validated those into pydantic models by then, so it
    records a typed block as one truncated text."""

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}
        self._logged = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._params = context.params

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._logged = False

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        """At the first node: kedro-mlflow starts its run after this hook's pipeline start."""
        import mlflow

        if not self._logged and mlflow.active_run() is not None:
            mlflow.log_params(flat_params(self._params))
            self._logged = True


class MlflowInterruptHooks:
    """A run stopped by Ctrl-C or SIGTERM is recorded in MLflow as ``KILLED``, not
    ``FINISHED``: Kedro calls no hook for a ``KeyboardInterrupt`` (kedro-mlflow ends runs at a
    pipeline's end or error), and MLflow ends a run still open at exit as finished, so an
    interrupted run's partial metrics would compare as a complete run's. While a pipeline runs
    (in the main thread), SIGTERM is :meth:`terminate_as_interrupt`."""

    def __init__(self) -> None:
        self._running = False
        self._at_exit = False
        self._sigterm: Any = None  # the handler before the run's

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._running = True
        if not self._at_exit:  # after MLflow's own exit handler: called before it
            atexit.register(self.end_interrupted_run)
            self._at_exit = True
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGTERM) != self.terminate_as_interrupt:
            self._sigterm = signal.signal(signal.SIGTERM, self.terminate_as_interrupt)

    def terminate_as_interrupt(self, signum: int, frame: Any) -> NoReturn:  # noqa: ARG002
        """SIGTERM ends a run as Ctrl-C does: the step says what it stored and that a re-run
        resumes, and the run is recorded as KILLED (the default action ended the process at
        once, leaving its MLflow run RUNNING). The handler before the run's is back at once: a
        second SIGTERM acts as it did, and a later run in this process (a notebook) finds it."""
        self._ended()
        self._running = True  # still open: end_interrupted_run records it as KILLED
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._ended()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._ended()

    def _ended(self) -> None:
        self._running = False
        if self._sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    def end_interrupted_run(self) -> None:
        """At exit: the open MLflow run of a pipeline that neither ended nor failed."""
        import mlflow

        if self._running and mlflow.active_run() is not None:
            logger.warning("The run was interrupted: recorded in MLflow as KILLED")
            # kedro-mlflow reopens its run at each node: the run is on MLflow's stack once per
            # node started, and each entry MLflow ends at exit would mark it FINISHED again
            while mlflow.active_run() is not None:
                mlflow.end_run(status="KILLED")
        self._running = False
