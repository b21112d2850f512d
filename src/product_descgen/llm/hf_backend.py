"""In-process generation with plain transformers ``model.generate``: the project's reference
path. Any faster engine's text is compared against what this one produces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from product_descgen.llm import types
from product_descgen.llm.backends import Connection
from product_descgen.llm.types import GenerationSettings, Request, Result, cut_at_stop

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]


def resolve_device(device: Device = "auto") -> str:
    """``auto``: cuda when torch sees a GPU, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def generation_kwargs(settings: GenerationSettings, tokenizer: Any) -> dict[str, Any]:
    """``generate`` arguments for ``settings`` (every knob set, so the model's own generation
    config adds nothing: no top-k, no penalty it was shipped with)."""
    s = settings
    return {
        "do_sample": s.temperature > 0,
        **({"temperature": s.temperature, "top_p": s.top_p, "top_k": 0} if s.temperature else {}),
        "max_new_tokens": s.max_new_tokens,
        "repetition_penalty": s.repetition_penalty,
        "no_repeat_ngram_size": s.no_repeat_ngram_size,
        "stop_strings": list(s.stop) or None,
        "tokenizer": tokenizer,
        "pad_token_id": tokenizer.pad_token_id,
    }


def load_model(model_dir: str, connection: Connection, adapter: str | None = None) -> Any:
    """A causal LM ready for inference on ``connection.device``. ``quantization`` ``nf4`` /
    ``int8``: bitsandbytes 4-bit (QLoRA's format) / 8-bit weights, placed with ``device_map``;
    ``none``: ``dtype`` weights. A LoRA ``adapter`` is merged into a plain base and kept
    unmerged on a quantized one."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    device, quantization = resolve_device(connection.device), connection.quantization
    torch_dtype = getattr(torch, connection.dtype)
    if quantization == "none":
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)
    elif quantization in ("nf4", "int8"):
        config = (
            BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch_dtype
            )
            if quantization == "nf4"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        model = AutoModelForCausalLM.from_pretrained(
            model_dir,
            dtype=torch_dtype,
            quantization_config=config,
            device_map={"": 0} if device == "cuda" else {"": "cpu"},
        )
    else:
        raise ValueError(f"unknown quantization {quantization!r}: none, int8 or nf4")
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
        if quantization == "none":
            model = model.merge_and_unload()
    return (model.to(device) if quantization == "none" else model).eval()


class TransformersBackend:
    """Generate with a local causal LM (a Hugging Face model directory), batch by batch."""

    name = "transformers"

    def __init__(
        self,
        model_dir: str,
        settings: GenerationSettings,
        connection: Connection | None = None,
        adapter: str | None = None,
    ) -> None:
        """``connection``: rows per batch (``batch_size``) and how :func:`load_model` loads the
        model (dtype, quantization, device); without one, the defaults."""
        from transformers import AutoTokenizer

        connection = connection or Connection(backend="transformers")
        self.model_id = model_dir
        self.settings = settings
        self.batch_size = connection.batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_model(model_dir, connection, adapter)

    def _row_end(self, tokens: list[int], eos: set[int]) -> tuple[int, bool]:
        """Tokens generated before the row ended (its EOS and the padding after it excluded),
        and whether it ended before the batch did."""
        end = len(tokens)
        while end and tokens[end - 1] == self.tokenizer.pad_token_id:
            end -= 1
        for i, token in enumerate(tokens[:end]):
            if token in eos:
                return i, True
        return end, end < len(tokens)

    def _generate_batch(
        self, requests: Sequence[Request], ids: list[list[int]], started: float
    ) -> list[Result]:
        """One left-padded batch through ``model.generate``; ``started``: its clock's start."""
        import torch

        padded = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        inputs = {k: padded[k].to(self.model.device) for k in ("input_ids", "attention_mask")}
        if self.settings.temperature > 0:
            torch.manual_seed(self.settings.seed)  # each batch reproducible on its own
        with torch.inference_mode():
            out = self.model.generate(**inputs, **generation_kwargs(self.settings, self.tokenizer))
        new = out[:, inputs["input_ids"].shape[1] :].tolist()
        elapsed = time.perf_counter() - started
        eos = self.model.generation_config.eos_token_id
        eos = {e for e in (eos if isinstance(eos, list) else [eos]) if e is not None}
        results = []
        for request, prompt, tokens in zip(requests, ids, new, strict=True):
            n, ended = self._row_end(tokens, eos)
            text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True)
            text, stopped = cut_at_stop(text, self.settings.stop)
            results.append(
                Result(
                    key=request.key,
                    text=text.strip(),
                    prompt_tokens=len(prompt),
                    completion_tokens=n,
                    latency_s=elapsed,
                    finish_reason="stop" if ended or stopped else "length",
                    meta={**request.meta, "batch_size": self.batch_size},
                )
            )
        return results

    def generate(self, requests: Sequence[Request]) -> Iterator[list[Result]]:
        """Each batch's results as soon as it finishes, so callers can persist as they go.
        Prompts run longest first, ``batch_size`` at a time, left-padded. An empty prompt is a
        failed result; any error in tokenising or generating propagates (it is systematic)."""
        ids, tokenise_s = [], []
        for request in requests:
            started = time.perf_counter()
            ids.append(types.prompt_token_ids(self.tokenizer, request))
            tokenise_s.append(time.perf_counter() - started)
        empty = [i for i, row in enumerate(ids) if not row]
        if empty:
            yield [
                Result(key=requests[i].key, text=None, error="empty prompt", meta=requests[i].meta)
                for i in empty
            ]
        order = sorted((i for i, row in enumerate(ids) if row), key=lambda i: -len(ids[i]))
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            # the batch's wall time, its rows' tokenisation included
            started = time.perf_counter() - sum(tokenise_s[i] for i in batch)
            try:
                results = self._generate_batch(
                    [requests[i] for i in batch], [ids[i] for i in batch], started
                )
            except Exception:
                logger.exception("generation failed for a batch of %d prompts", len(batch))
                raise
            logger.info("Generated %d rows in %.2f s", len(batch), results[0].latency_s)
            yield results
