"""In-process generation on OpenVINO GenAI's continuous-batching engine (the CPU default).

The model is an OpenVINO IR directory made by :mod:`product_descgen.export.openvino`; prompts are
tokenised with the model's own Hugging Face tokenizer (saved beside the IR), so the engine sees
exactly the token ids the ``transformers`` reference path sees. ``batch_size`` requests are in
flight; a finished request's place goes to the next prompt at once, and results are yielded as
they finish so callers can persist them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from product_descgen.llm import openvino_compat, types
from product_descgen.llm.backends import Connection
from product_descgen.llm.types import GenerationSettings, Request, Result, cut_at_stop
from product_descgen.runtime import exit_if_stuck, threads

logger = logging.getLogger(__name__)

IR_FILE = "openvino_model.xml"


def engine_properties(precision: str, n_threads: int, weights: str | None = None) -> dict[str, Any]:
    """OpenVINO CPU plugin properties: threads, and f32 compute and KV cache for ``f32`` (the
    plugin otherwise computes in bf16 on CPUs that have it, which changes greedy text), or for
    ``auto`` where the plugin would crash; the sampler on one thread (both:
    :mod:`product_descgen.llm.openvino_compat`)."""
    properties: dict[str, Any] = {
        "INFERENCE_NUM_THREADS": n_threads,
        "sampler_num_threads": openvino_compat.SAMPLER_THREADS,
    }
    if openvino_compat.applied_precision(precision, n_threads, weights) == "f32":
        properties |= {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
    return properties


class OpenVINOBackend:
    """Generate with an OpenVINO IR model through ``ContinuousBatchingPipeline``."""

    name = "openvino"

    def __init__(
        self,
        model_dir: str,
        settings: GenerationSettings,
        connection: Connection | None = None,
    ) -> None:
        """``connection``: requests in flight (``batch_size``), ``precision``
        (:func:`engine_properties`), ``prefix_caching``, ``step_timeout_s`` (a longer engine
        step ends the process with every thread's stack on stderr:
        :func:`product_descgen.runtime.exit_if_stuck`) and the ``weights`` served, which name
        the serving in reports and cache keys and must match the export's record; without one,
        the defaults and whatever weights the export holds."""
        import openvino_genai as ov_genai
        from transformers import AutoTokenizer

        from product_descgen.export.openvino import recorded_weights

        if not (Path(model_dir) / IR_FILE).is_file():
            skipped = Path(model_dir) / "export_skipped.txt"
            why = skipped.read_text().strip() if skipped.is_file() else "no " + IR_FILE
            raise FileNotFoundError(
                f"{model_dir} is not an OpenVINO model directory ({why}): export it with "
                "product_descgen.export.openvino (make models; the finetune pipeline exports "
                "the student)"
            )
        c = connection or Connection(backend="openvino")
        weights = connection.weights if connection else None
        recorded = recorded_weights(model_dir)
        if weights and recorded and weights != recorded:
            raise ValueError(
                f"{model_dir} holds {recorded} weights, but the connection serves it as {weights}: "
                f"set the connection's weights to {recorded}, or export the model with {weights} "
                "weights (make models; the student: kedro run --nodes "
                "export_student_for_openvino_node)"
            )
        self.model_id = model_dir
        self.settings = settings
        self.batch_size = c.batch_size
        self.step_timeout_s = c.step_timeout_s
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        scheduler = ov_genai.SchedulerConfig()
        scheduler.max_num_seqs = c.batch_size
        scheduler.enable_prefix_caching = c.prefix_caching
        properties = engine_properties(c.precision, threads(), weights or recorded)
        self.pipeline = ov_genai.ContinuousBatchingPipeline(model_dir, scheduler, "CPU", properties)

    def generation_config(self) -> Any:
        import openvino_genai as ov_genai

        s = self.settings
        config = ov_genai.GenerationConfig()
        config.max_new_tokens = s.max_new_tokens
        config.repetition_penalty = s.repetition_penalty
        config.no_repeat_ngram_size = s.no_repeat_ngram_size or 0
        if self.tokenizer.eos_token_id is not None:
            config.eos_token_id = self.tokenizer.eos_token_id
        if s.stop:
            config.stop_strings = set(s.stop)
            config.include_stop_str_in_output = False
        if s.temperature > 0:
            config.do_sample = True
            config.temperature = s.temperature
            config.top_p = s.top_p
            config.rng_seed = s.seed
        else:
            config.do_sample = False
        return config

    def _result(self, request: Request, prompt_len: int, outputs: list, seconds: float) -> Result:
        if outputs:  # GenerationFinishReason STOP, LENGTH: "stop", "length"
            tokens, finish = list(outputs[0].generated_ids), outputs[0].finish_reason.name.lower()
        elif self.settings.stop:
            # OpenVINO GenAI 2026.4 returns no output when the first generated token completes
            # a stop string: the text is empty, as every backend gives it.
            tokens, finish = [], "stop"
        else:
            raise RuntimeError(f"OpenVINO returned no output for {request.key!r}")
        text, _ = cut_at_stop(
            self.tokenizer.decode(tokens, skip_special_tokens=True), self.settings.stop
        )
        return Result(
            key=request.key,
            text=text.strip(),
            prompt_tokens=prompt_len,
            completion_tokens=len(tokens) or 1,  # a stop at the first token generated it
            latency_s=seconds,
            finish_reason=finish,
            meta={**request.meta, "batch_size": self.batch_size},
        )

    def generate(self, requests: Sequence[Request]) -> Iterator[list[Result]]:
        """Results as they finish (those of each engine step). Prompts are admitted longest
        first; each request's clock starts when it is handed to the engine, before its prefill."""
        import numpy as np
        import openvino as ov
        import openvino_genai as ov_genai

        ids = [types.prompt_token_ids(self.tokenizer, r) for r in requests]
        waiting = sorted(range(len(requests)), key=lambda i: -len(ids[i]))[::-1]
        config = self.generation_config()
        in_flight: dict[int, tuple[Any, float]] = {}
        chunk: list[Result] = []
        while waiting or in_flight:
            while waiting and len(in_flight) < self.batch_size:
                i = waiting.pop()
                tensor = ov.Tensor(np.asarray([ids[i]], dtype=np.int64))
                in_flight[i] = (self.pipeline.add_request(i, tensor, config), time.perf_counter())
            with exit_if_stuck(self.step_timeout_s):
                self.pipeline.step()
            for i, (handle, started) in list(in_flight.items()):
                status = handle.get_status()
                if status == ov_genai.GenerationStatus.RUNNING:
                    continue
                del in_flight[i]
                outputs = handle.read_all()
                seconds = time.perf_counter() - started
                if status != ov_genai.GenerationStatus.FINISHED:
                    raise RuntimeError(
                        f"OpenVINO generation of {requests[i].key!r} ended with status {status}"
                    )
                chunk.append(self._result(requests[i], len(ids[i]), outputs, seconds))
            if chunk:  # handed over as they finish, so callers store each at once
                yield chunk
                chunk = []
