"""In-process generation with transformers: batched, length-sorted, prefix-cached.

Prompts are sorted by token length so each batch pads little; each batch runs under
``torch.inference_mode``; greedy decoding, or sampling seeded per batch for reproducibility.

Without a shared prefix, decoding uses a static (preallocated) KV cache: a growing cache is
re-concatenated every step, which cost over a third of a small model's step time here.

Prefix cache: prompts rendered from one template share a long prefix (instructions and worked
examples are most of a base-model prompt). Its keys/values are computed once per call and
reused by every batch; each row is then ``[prefix | padding | own suffix]`` with the padding
masked out, which gives the same greedy output as generating each prompt alone (tested).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from product_descgen.llm.types import GenerationSettings, Request, Result, cut_at_stop

logger = logging.getLogger(__name__)


def load_model(
    model_dir: str, dtype: str, quantization: str = "none", adapter: str | None = None
) -> Any:
    """A causal LM ready for inference: the base model, a LoRA adapter merged into it (no
    adapter cost per token), then quantised as served.

    ``int8``: int8 weights, float activations (torchao weight-only; text as float32's).
    ``nf4``: bitsandbytes 4-bit, QLoRA's format: a QLoRA adapter is served on the base it was
    trained on, unmerged. (torch's dynamic int8, which also quantises activations, was 1.5-2x
    faster here but wrecked both default models' text: docs/benchmarks.md.)
    """
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if quantization == "nf4":
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=getattr(torch, dtype),
        )
        model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=config)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
        if quantization != "nf4":
            model = model.merge_and_unload()
    if quantization == "int8":
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        quantize_(model, Int8WeightOnlyConfig())
    _own_memory(model)
    model.eval()
    return model


def _own_memory(model: Any) -> None:
    """Copy weights still backed by the memory-mapped checkpoint into process memory, so the
    mapping is released: the model then holds exactly what it serves with (and the process's
    resident memory says so), not the pages of a checkpoint it has since quantised."""
    import torch

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.device.type == "cpu" and tensor.dtype.is_floating_point:
                tensor.data = tensor.data.clone()


def configure_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (``None``: leave torch's default)."""
    import torch

    if threads:
        torch.set_num_threads(threads)


class TransformersBackend:
    """Generate with a local causal LM (a Hugging Face model directory)."""

    name = "transformers"

    def __init__(
        self,
        model_dir: str,
        settings: GenerationSettings,
        batch_size: int = 16,
        dtype: str = "float32",
        threads: int | None = None,
        prefix_cache: bool = True,
        min_prefix_tokens: int = 32,
        quantization: str = "none",
        adapter: str | None = None,
    ) -> None:
        from transformers import AutoTokenizer

        configure_threads(threads)
        self.model_id = model_dir
        self.settings = settings
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self.min_prefix_tokens = min_prefix_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_model(model_dir, dtype, quantization, adapter)
        self.has_chat_template = bool(self.tokenizer.chat_template)

    def render(self, request: Request) -> str:
        """The exact text the model sees (chat template applied for chat requests)."""
        if request.prompt is not None:
            return request.prompt
        if not self.has_chat_template:
            raise ValueError(
                f"model {self.model_id} has no chat template: use the base-model prompt form "
                "(teacher_generation.prompt_style: base)"
            )
        return self.tokenizer.apply_chat_template(
            list(request.messages or ()), tokenize=False, add_generation_prompt=True
        )

    def _tokenise(self, requests: Sequence[Request]) -> list[list[int]]:
        """Token ids as the model expects them: a plain prompt gets the tokenizer's special
        tokens (Gemma degenerates without its BOS); a chat template already contains them."""
        ids = []
        for request in requests:
            text = self.render(request)
            special = request.prompt is not None
            ids.append(self.tokenizer(text, add_special_tokens=special)["input_ids"])
        return ids

    def _batches(
        self, requests: Sequence[Request], ids: list[list[int]]
    ) -> Iterator[list[tuple[Request, list[int]]]]:
        order = sorted(range(len(requests)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            yield [(requests[i], ids[i]) for i in order[start : start + self.batch_size]]

    def shared_prefix(self, ids: list[list[int]]) -> int:
        """Length of the token prefix all prompts share (0 when too short to be worth it).
        One token is always left to every suffix, so each row has a last real token."""
        if not self.prefix_cache or len(ids) < 2:
            return 0
        shortest = min(len(i) for i in ids)
        n = 0
        while n < shortest - 1 and all(i[n] == ids[0][n] for i in ids):
            n += 1
        return n if n >= self.min_prefix_tokens else 0

    def _prefix_state(self, prefix: list[int]) -> Any:
        import torch

        if not prefix:
            return None
        with torch.inference_mode():
            out = self.model(torch.tensor([prefix]), use_cache=True)
            cache = getattr(out, "cache", None)  # transformers 5 name; past_key_values before
            return cache if cache is not None else out.past_key_values

    def _inputs(
        self, batch: list[tuple[Request, list[int]]], prefix_len: int, prefix_state: Any
    ) -> dict[str, Any]:
        """Left-padded rows, or ``[prefix | padding | suffix]`` rows over a copied prefix cache."""
        import torch

        pad = self.tokenizer.pad_token_id
        suffixes = [ids[prefix_len:] for _, ids in batch]
        width = max(len(s) for s in suffixes)
        prefix = batch[0][1][:prefix_len]
        rows = [prefix + [pad] * (width - len(s)) + s for s in suffixes]
        mask = [[1] * prefix_len + [0] * (width - len(s)) + [1] * len(s) for s in suffixes]
        inputs: dict[str, Any] = {
            "input_ids": torch.tensor(rows),
            "attention_mask": torch.tensor(mask),
        }
        if prefix_state is not None:
            cache = copy.deepcopy(prefix_state)
            cache.batch_repeat_interleave(len(batch))
            inputs["cache"] = cache
        return inputs

    def _generate_batch(
        self,
        batch: list[tuple[Request, list[int]]],
        prefix_len: int = 0,
        prefix_state: Any = None,
    ) -> list[Result]:
        import torch

        s = self.settings
        inputs = self._inputs(batch, prefix_len, prefix_state)
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_new_tokens,
            "do_sample": s.temperature > 0,
            "repetition_penalty": s.repetition_penalty,
            "no_repeat_ngram_size": s.no_repeat_ngram_size,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if s.temperature > 0:
            kwargs.update(temperature=s.temperature, top_p=s.top_p)
            torch.manual_seed(s.seed)
        else:  # silence generation_config sampling defaults under greedy decoding
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if s.stop:
            kwargs.update(stop_strings=s.stop, tokenizer=self.tokenizer)
        if prefix_state is None:  # a preallocated cache: no per-step concatenation of K/V
            kwargs["cache_implementation"] = "static"
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        elapsed = time.perf_counter() - started
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        eos_ids = self.model.generation_config.eos_token_id
        eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
        results = []
        for (request, ids), row in zip(batch, new_tokens.tolist(), strict=True):
            kept = []
            for token in row:
                if token in eos_ids or token == self.tokenizer.pad_token_id:
                    break
                kept.append(token)
            text, stopped = cut_at_stop(
                self.tokenizer.decode(kept, skip_special_tokens=True), s.stop
            )
            finished = stopped or len(kept) < s.max_new_tokens
            results.append(
                Result(
                    key=request.key,
                    text=text.strip(),
                    prompt_tokens=len(ids),
                    completion_tokens=len(kept),
                    latency_s=elapsed,
                    finish_reason="stop" if finished else "length",
                    meta={**request.meta, "batch_size": len(batch)},
                )
            )
        return results

    def generate(self, requests: Sequence[Request]) -> Iterator[list[Result]]:
        """Results batch by batch (longest prompts first), so callers can persist as they go."""
        ids = self._tokenise(requests)
        prefix_len = self.shared_prefix(ids)
        prefix_state = self._prefix_state(ids[0][:prefix_len]) if prefix_len else None
        if prefix_len:
            logger.info("Prefix cache: %d tokens shared by %d prompts", prefix_len, len(ids))
        for batch in self._batches(requests, ids):
            try:
                yield self._generate_batch(batch, prefix_len, prefix_state)
            except Exception as err:  # noqa: BLE001 - recorded per item, the run goes on
                logger.exception("generation failed for a batch of %d", len(batch))
                yield [
                    Result(key=r.key, text=None, error=f"{type(err).__name__}: {err}", meta=r.meta)
                    for r, _ in batch
                ]
