"""Kedro hooks: wall time per pipeline, logged at the end of every run."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

PIPELINES = ("data_prep", "teacher_generation", "finetune", "evaluation", "describe", "reporting")


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
