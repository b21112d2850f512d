"""Process-wide runtime settings: how many CPU threads every engine in this process may use,
and a watchdog for calls into native code that may never return.

One setting (``runtime.threads`` in ``conf/base/parameters.yml``), applied by a hook before any
node runs and read by every backend, the trainer and the speed workers. ``auto`` (the default)
is ``OMP_NUM_THREADS`` when the environment sets it (a scheduler's allocation, the test suite),
else the CPUs this process may use. OpenMP threads wait passively (``OMP_WAIT_POLICY``, set by
the package before torch loads): a spinning thread on a core another process needs made two
threads many times slower than one on a busy 2-core machine; waiting passively, two threads were
faster than one with the machine idle and as fast with the other core busy
(docs/benchmarks.md, "CPU threads per process").
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # the command-line entry points
ENV_VAR = "OMP_NUM_THREADS"  # read by torch, OpenMP and the speed workers' fresh processes
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


class RuntimeParams(BaseModel):
    """The ``runtime`` block of ``conf/base/parameters.yml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: PositiveInt | Literal["auto"] = "auto"

    def resolved_threads(self) -> int:
        """The thread count ``threads`` stands for in this process."""
        if self.threads != "auto":
            return self.threads
        return env_threads() or usable_cpus()


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container given 2 CPUs of a bigger host sees all of the host's in its affinity)."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the affinity is the limit
    return count


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads from now on: torch's intra-op pool, and (through the
    environment) processes started later and engines that read it at load."""
    os.environ[ENV_VAR] = str(threads)
    import torch

    torch.set_num_threads(threads)


def env_threads() -> int | None:
    """The thread count the environment sets (``OMP_NUM_THREADS``), or None."""
    value = os.environ.get(ENV_VAR, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def threads() -> int:
    """The thread count set for this process (1 when none was set)."""
    return env_threads() or 1


@contextlib.contextmanager
def exit_if_stuck(timeout_s: float | None) -> Iterator[None]:
    """Around one call into native code that holds the GIL and may never return (an engine step
    waiting on a deadlock): if it has not returned after ``timeout_s`` seconds, every thread's
    stack goes to stderr and the process exits with status 1. faulthandler's timer runs without
    the GIL, so it fires where a Python watchdog thread could not; a stuck run then ends loudly,
    and a rerun resumes from what was stored, instead of waiting forever. ``None``: no guard.
    The timer is process-wide (faulthandler keeps one), so guards do not nest."""
    if timeout_s is None:
        yield
        return
    faulthandler.dump_traceback_later(timeout_s, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
