"""Process-wide runtime settings: how many CPU threads every engine in this process may use.

One setting (``runtime.threads`` in ``conf/base/parameters.yml``), applied by a hook before any
node runs and read by every backend, the trainer and the speed workers. On small shared machines
one thread per process is the default: two OpenMP threads on two busy cores ran a small matrix
product many times slower than one (docs/benchmarks.md).
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, PositiveInt

ENV_VAR = "OMP_NUM_THREADS"  # read by torch, OpenMP and the speed workers' fresh processes


class RuntimeParams(BaseModel):
    """The ``runtime`` block of ``conf/base/parameters.yml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: PositiveInt = 1


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads from now on: torch's intra-op pool, and (through the
    environment) processes started later and engines that read it at load."""
    os.environ[ENV_VAR] = str(threads)
    import torch

    torch.set_num_threads(threads)


def threads() -> int:
    """The thread count set for this process (1 when none was set)."""
    value = os.environ.get(ENV_VAR, "")
    return int(value) if value.isdigit() and int(value) > 0 else 1
