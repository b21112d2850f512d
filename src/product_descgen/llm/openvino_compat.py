"""Narrow workarounds for OpenVINO and OpenVINO GenAI 2026.4.1 defects met by the openvino
backend (its engine properties); docs/architecture.md tells each story, docs/upstream.md has the
reports to file.

1. ``bf16_crash``: the CPU plugin dies with SIGFPE (the process ends, no Python error) compiling
   a model with uncompressed (fp32) weights for bf16 compute on one inference thread (like
   openvinotoolkit/openvino#33300, fp16 weights pinned to one core); int8 weights, two threads,
   or an f32 or f16 hint compile. Guarded by version (``BF16_CRASH``): the suite's engine tests,
   one thread each on fp32 exports, crash without it.
2. ``SAMPLER_THREADS``: with several sampler threads (GenAI's default, one per CPU), stop-string
   checks detokenize concurrently through GenAI's ``CircularBufferQueue``, whose ``get_idle``
   can miss a request handed back between its empty check and its wait; the step then waits
   forever ("A known stall"). Not guarded by version: no reproduction tells when it is fixed.
"""

from __future__ import annotations

BF16_CRASH = ("2026.4.",)  # OpenVINO releases with the crash
SAMPLER_THREADS = 1


def bf16_crash(n_threads: int, weights: str | None) -> bool:
    """Whether the plugin's own choice (bf16 where the CPU has it) would crash at compile:
    one thread, fp32 or unrecorded weights, an affected release."""
    import openvino

    return (
        n_threads == 1 and weights in (None, "fp32") and openvino.__version__.startswith(BF16_CRASH)
    )


def applied_precision(precision: str, n_threads: int, weights: str | None) -> str:
    """The precision the engine computes in: ``auto`` becomes ``f32`` where it would crash."""
    return "f32" if precision == "auto" and bf16_crash(n_threads, weights) else precision
