"""runtime.threads: a number, or auto (the environment's OMP_NUM_THREADS, else the usable CPUs);
OpenMP threads wait passively; a native call that never returns ends the process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from product_descgen.runtime import ENV_VAR, RuntimeParams, usable_cpus


def test_a_number_is_used_as_given(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3")
    assert RuntimeParams(threads=5).resolved_threads() == 5


def test_auto_follows_the_environment_when_it_sets_threads(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3")
    assert RuntimeParams().threads == "auto"
    assert RuntimeParams().resolved_threads() == 3


def test_auto_is_the_usable_cpus_otherwise(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    resolved = RuntimeParams().resolved_threads()
    assert resolved == usable_cpus()
    assert 1 <= resolved <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("150000 100000\n", 1), ("100000 100000\n", 1), ("max 100000\n", None), ("garbage", None)],
)
def test_a_cgroup_quota_caps_the_affinity(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(path) == (min(affinity, expected) if expected else affinity)


def test_without_a_cgroup_file_the_affinity_is_the_limit(tmp_path):
    assert usable_cpus(tmp_path / "missing") == len(os.sched_getaffinity(0))


def test_zero_or_words_are_refused():
    for bad in (0, -1, "all"):
        with pytest.raises(ValidationError):
            RuntimeParams(threads=bad)


def test_the_package_makes_openmp_wait_passively_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = (
        "import sys, os, product_descgen; "
        "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.split() == ["PASSIVE", "False"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own choice stands
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.split() == ["ACTIVE", "False"]


def test_the_hook_applies_the_resolved_count(monkeypatch):
    from types import SimpleNamespace

    import torch

    from product_descgen.hooks import RuntimeHooks
    from product_descgen.runtime import threads

    monkeypatch.setenv(ENV_VAR, "2")
    before = torch.get_num_threads()
    try:
        RuntimeHooks().after_context_created(SimpleNamespace(params={"runtime": {"threads": 3}}))
        assert (threads(), torch.get_num_threads()) == (3, 3)
        RuntimeHooks().after_context_created(SimpleNamespace(params={}))  # auto: the env's 3
        assert (threads(), torch.get_num_threads()) == (3, 3)
    finally:
        torch.set_num_threads(before)


def run_guarded(timeout_s: float | None, call: str, after: str = "pass"):
    code = (
        "import re, time\n"
        "from product_descgen.runtime import exit_if_stuck\n"
        f"with exit_if_stuck({timeout_s}):\n"
        f"    {call}\n"
        f"{after}\n"
        "print('returned')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)  # fmt: skip


def test_a_native_call_that_never_returns_ends_the_process_with_its_stack():
    # catastrophic backtracking: C code that holds the GIL far longer than any test runs
    done = run_guarded(0.5, 're.match(r"(a+)+$", "a" * 64 + "b")')
    assert done.returncode == 1 and "returned" not in done.stdout
    assert "Timeout" in done.stderr and 'File "<string>", line 4' in done.stderr


@pytest.mark.parametrize("timeout_s", [0.5, None])
def test_a_call_that_returns_disarms_the_guard_and_none_sets_none(timeout_s):
    call = "pass" if timeout_s else "time.sleep(1.0)"
    done = run_guarded(timeout_s, call, after="time.sleep(1.0)")
    assert done.returncode == 0 and "returned" in done.stdout, done.stderr
