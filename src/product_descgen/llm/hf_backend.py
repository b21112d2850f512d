"""In-process generation with transformers: continuous batching over a shared prompt prefix.

Prompts are admitted longest first, ``batch_size`` in flight; a finished row's slot takes the
next prompt at once (``decoding.Decoder``), so no decode step is spent on rows that have
ended; everything runs under ``torch.inference_mode``; greedy decoding, or seeded sampling.

Prefix cache: prompts rendered from one template share a long prefix (instructions and worked
examples are most of a base-model prompt). Its keys/values are computed once per call and
reused by every row; each row is then ``[prefix | padding | own suffix]`` with the padding
masked out, which gives the same greedy output as generating each prompt alone (tested).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from product_descgen.llm.decoding import Decoded, Decoder, RowsFailed
from product_descgen.llm.output_rows import choose_row_blocks
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
    from product_descgen.llm import attention

    attention.use(model)  # before any adapter wraps it: the peft model shares its config
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
        if quantization != "nf4":
            model = model.merge_and_unload()
    if quantization == "nf4":
        from product_descgen.llm import nf4_fused
        from product_descgen.llm.nf4_cpu import split_paths

        split_paths(model)
        nf4_fused.fuse_projections(model)
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
        choose_row_blocks(self.model)  # BLAS slow spots of the output layer, found in the loop
        self.has_chat_template = bool(self.tokenizer.chat_template)
        self._decoder: Decoder | None = None
        self._decoder_settings: GenerationSettings | None = None
        self.decoder()  # at load: its output-layer screen (screen.py) and stop-string tables

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

    def decoder(self) -> Decoder:
        """The decode loop for the current settings (rebuilt only when they change)."""
        if self._decoder is None or self._decoder_settings != self.settings:
            s = self.settings
            self._decoder = Decoder(
                self.model,
                self.tokenizer,
                max_new_tokens=s.max_new_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                repetition_penalty=s.repetition_penalty,
                no_repeat_ngram_size=s.no_repeat_ngram_size,
                stop=s.stop,
                seed=s.seed,
            )
            self._decoder_settings = self.settings
        return self._decoder

    def _result(self, request: Request, ids: list[int], out: Decoded) -> Result:
        text, _ = cut_at_stop(
            self.tokenizer.decode(out.tokens, skip_special_tokens=True), self.settings.stop
        )
        return Result(
            key=request.key,
            text=text.strip(),
            prompt_tokens=len(ids),
            completion_tokens=len(out.tokens),
            latency_s=out.elapsed_s,
            finish_reason=out.finish_reason,
            meta={**request.meta, "batch_size": self.batch_size},
        )

    def generate(self, requests: Sequence[Request]) -> Iterator[list[Result]]:
        """Results in chunks of ``batch_size`` as they finish, so callers can persist as they
        go. Prompts are admitted longest first, ``batch_size`` in flight at a time."""
        ids = self._tokenise(requests)
        prefix = ids[0][: self.shared_prefix(ids)] if ids else []
        if prefix:
            logger.info("Prefix cache: %d tokens shared by %d prompts", len(prefix), len(ids))
        order = sorted(range(len(requests)), key=lambda i: -len(ids[i]))
        chunk: list[Result] = []
        pending = list(order)  # not yet finished, longest first

        def failed(indices: Sequence[int], err: Exception) -> list[Result]:
            error = f"{type(err).__name__}: {err}"
            return [
                Result(key=requests[i].key, text=None, error=error, meta=requests[i].meta)
                for i in indices
            ]

        try:
            decoder = self.decoder()
            prefix_kv = decoder.prefix_cache(prefix) if prefix else None
        except Exception as err:  # noqa: BLE001 - recorded per item, the run goes on
            logger.exception("generation failed before any prompt")
            chunk, pending = failed(pending, err), []
        while pending:  # after a failure, the rows in flight are recorded, the rest go on
            rows = [ids[i][len(prefix) :] for i in pending]
            stream = decoder.stream(
                rows, self.tokenizer.pad_token_id, self.batch_size, prefix, prefix_kv
            )
            done: set[int] = set()
            try:
                for index, out in stream:
                    i = pending[index]
                    done.add(i)
                    chunk.append(self._result(requests[i], ids[i], out))
                    if len(chunk) == self.batch_size:
                        yield chunk
                        chunk = []
                pending = []
            except Exception as err:  # noqa: BLE001 - recorded per item, the run goes on
                unfinished = [i for i in pending if i not in done]
                # the decoder names the rows in flight; otherwise (an error outside it, or none
                # in flight) every unfinished prompt is lost, so each pass makes progress
                in_flight = isinstance(err, RowsFailed) and [pending[k] for k in err.rows]
                lost = in_flight or unfinished
                logger.exception("generation failed for %d prompts", len(lost))
                chunk += failed(lost, err.cause if isinstance(err, RowsFailed) else err)
                pending = [i for i in unfinished if i not in lost]
        if chunk:
            yield chunk
