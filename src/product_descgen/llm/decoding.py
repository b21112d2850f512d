"""A lean decode loop for CPU serving: continuous batching over a shared prompt prefix.

``model.generate`` keeps every row of a batch in every forward pass until the *longest* row
ends; in the demo teacher run the median output was 75 tokens against caps of 200-240, so
over half of the decode work went to rows that had already finished. Here a finished row's
slot is refilled at once with the next prompt (its suffix prefilled over the cached prefix
and written into the slot), so the batch stays full until the queue runs dry; then finished
rows simply leave. The KV cache is preallocated (``SlotLayer``): the library's dynamic cache
re-concatenates every layer's keys and values on every step, about a third of a small
model's decode step on this CPU.

Rows are ``[prefix | padding | prompt | generated]`` in a shared slot grid. Masks are built
here from each row's real token positions, so padding never shifts a sliding attention window
and a row's output is the one it gets alone (tested against ``model.generate``). Logits
processing and stop strings reuse transformers' own processors and criteria: greedy, or
seeded temperature / top-p sampling, repetition penalty (applied in place on the logits the
loop owns: ``logits.py``), n-gram blocking, EOS, stop strings.
transformers' own continuous batching (``generate_batch``, paged attention) is measured
beside this loop in ``benchmarks/teacher_throughput.py``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer
from transformers.generation.logits_process import (
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)
from transformers.generation.stopping_criteria import StopStringCriteria

from product_descgen.llm import lean, output_rows
from product_descgen.llm.logits import RepetitionPenaltyInPlace, greedy
from product_descgen.llm.screen import ScreenedHead

KV = tuple[list[torch.Tensor], list[torch.Tensor]]  # per layer keys, values: [1, H, P, D]
# Prompts go through the model in chunks of about this many tokens (all rows together): the
# activations of a whole batch of prompts at once were the peak of a serving process (about
# 100 MB above the KV cache for 12 SmolLM2 prompts), and a chunk this size still makes large
# matrix products.
PREFILL_TOKENS = 1024


class SlotLayer(DynamicLayer):
    """One layer's keys/values in a preallocated ``[slots, heads, capacity, dim]`` buffer, of
    which the first ``rows`` rows are in use: each step writes in place and exposes a view (no
    concatenation). Rows leave by moving the later ones down and join in the free rows, in
    place; the buffer is copied into a new one only when it runs out of rows or columns, or
    when half its rows or fewer are left (so rows that have gone do not hold memory for long).
    A buffer this size goes back to the OS when freed and a new one is paged in as it is
    written, so reallocating at every change cost the teacher's speed test 8%. Every layer keeps
    all positions; sliding windows are applied by the masks."""

    def __init__(self, capacity: int, slots: int = 0) -> None:
        super().__init__()
        self.capacity = capacity
        self.slots = slots  # rows to allocate (at least the rows of the first update)
        self.length = 0
        self.rows = 0
        self.shared: tuple[torch.Tensor, torch.Tensor] | None = None  # set by `start`

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        rows, heads = key_states.shape[:2]
        slots = max(rows, self.slots)
        # empty, not zeroed: only written columns of rows in use are ever read, and untouched
        # pages of a large buffer stay out of the process's resident memory until used
        self._keys = key_states.new_empty(slots, heads, self.capacity, key_states.shape[-1])
        self._values = value_states.new_empty(slots, heads, self.capacity, value_states.shape[-1])
        self.rows = rows
        self.device = key_states.device
        self.is_initialized = True

    def _views(self) -> None:
        self.keys = self._keys[: self.rows, :, : self.length]
        self.values = self._values[: self.rows, :, : self.length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV cache full: {end} positions > capacity {self.capacity}")
        self._keys[: self.rows, :, self.length : end] = key_states
        self._values[: self.rows, :, self.length : end] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def start(self, keys: torch.Tensor, values: torch.Tensor, rows: int) -> None:
        """Begin ``rows`` rows from the same cached prefix (``[1, H, P, D]``), which stays
        the first ``P`` columns of every row, and is kept as ``shared`` (one copy, for
        attention that reads it once for all rows: ``lean.py``)."""
        self.shared = keys, values
        self.lazy_initialization(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))
        self.length = 0
        self.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if not self.is_initialized:
            return
        kept = indices.tolist()
        removal = all(b > a for a, b in zip(kept, kept[1:], strict=False))
        if removal and len(kept) > self._keys.shape[0] // 2:
            for new, old in enumerate(kept):  # move each kept row down, never over another
                if new != old:
                    self._keys[new, :, : self.length] = self._keys[old, :, : self.length]
                    self._values[new, :, : self.length] = self._values[old, :, : self.length]
        else:  # half the rows or fewer left (or a reorder): a smaller buffer frees the rest
            self._keys = self._copy_rows(self._keys[indices, :, : self.length])
            self._values = self._copy_rows(self._values[indices, :, : self.length])
        self.rows = len(kept)
        self._views()

    def _copy_rows(self, written: torch.Tensor, extra_rows: int = 0) -> torch.Tensor:
        """A new buffer holding ``written`` (its first columns), plus ``extra_rows`` unwritten
        rows, without touching the columns beyond them."""
        rows, heads, _, dim = written.shape
        buffer = written.new_empty(rows + extra_rows, heads, self.capacity, dim)
        buffer[:rows, :, : written.shape[2]] = written
        return buffer

    def new_rows(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Take ``count`` more rows (in free rows of the buffer, or a larger buffer if none
        are left); their key and value views over the written columns, to fill in."""
        if self.rows + count > self._keys.shape[0]:
            extra = self.rows + count - self._keys.shape[0]
            self._keys = self._copy_rows(self._keys[: self.rows, :, : self.length], extra)
            self._values = self._copy_rows(self._values[: self.rows, :, : self.length], extra)
        first, self.rows = self.rows, self.rows + count
        self._views()
        return self.keys[first:], self.values[first:]

    def keep_columns(self, columns: torch.Tensor, capacity: int) -> None:
        """Keep only ``columns`` (in order), in a buffer of ``capacity`` positions."""
        keys = self._keys[: self.rows, :, columns]
        values = self._values[: self.rows, :, columns]
        self.capacity, self.length = capacity, len(columns)
        self.lazy_initialization(keys, values)
        self._keys[: self.rows, :, : self.length] = keys
        self._values[: self.rows, :, : self.length] = values
        self._views()


def new_cache(model: Any, capacity: int, slots: int = 0) -> Cache:
    """An empty cache of ``SlotLayer``s, one per decoder layer of ``model``, with room for
    ``slots`` rows (at least as many as it is started with)."""
    layers = model.config.get_text_config().num_hidden_layers
    return Cache(layers=[SlotLayer(capacity, slots) for _ in range(layers)])


def _chunks(mask: torch.Tensor, tokens: int, offset: int = 0) -> tuple[list[int], list[int]]:
    """Column ranges ``[start, end)`` (plus ``offset``) of about ``tokens`` real tokens each
    (``mask``'s ones, all rows together): left padding makes early columns sparse."""
    starts, ends, count = [offset], [], 0
    for column, real in enumerate(mask.sum(0).tolist()):
        if count and count + real > tokens:
            ends.append(offset + column)
            starts.append(offset + column)
            count = 0
        count += real
    return starts, ends + [offset + mask.shape[1]]


@dataclass
class Decoded:
    """One prompt's new tokens, why it stopped, and its latency (admitted to finished)."""

    tokens: list[int]
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    elapsed_s: float


def _with_pending(
    ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, token: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows with each one's chosen ``token`` appended as the pending column (a real token,
    one position after the row's last)."""
    return (
        torch.cat([ids, token[:, None]], 1),
        torch.cat([mask, torch.ones_like(mask[:, -1:])], 1),
        torch.cat([positions, positions[:, -1:] + 1], 1),
    )


@dataclass
class _Grid:
    """The rows in flight: token ids, mask and positions per slot column (the last column is
    each row's pending token, not yet in the cache), and which prompt each row serves."""

    ids: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    prompt: list[int]  # index of the prompt each row serves
    started: list[float]  # when each row was admitted
    new: list[list[int]]  # tokens generated so far
    reason: list[str | None]  # why each row ended ("stop", "length"), None while running

    def keep(self, rows: torch.Tensor) -> None:
        self.ids, self.mask, self.positions = self.ids[rows], self.mask[rows], self.positions[rows]
        kept = rows.tolist()
        self.prompt = [self.prompt[i] for i in kept]
        self.started = [self.started[i] for i in kept]
        self.new = [self.new[i] for i in kept]
        self.reason = [self.reason[i] for i in kept]


class RowsFailed(RuntimeError):
    """Decoding failed; ``rows`` were in flight (the others finished or were not started)."""

    def __init__(self, rows: list[int], cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.rows, self.cause = rows, cause


class Decoder:
    """Decoding for one model and one set of decoding rules (built once, reused for every
    call: the stop-string tables cost a pass over the vocabulary)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        stop: list[str] | None = None,
        seed: int = 0,
        prefill_tokens: int = PREFILL_TOKENS,
    ) -> None:
        self.model = model
        self.lean = lean.supports(model)  # Llama, Gemma 3: a forward with fewer operations
        self.pack = True  # lean prompts skip their padding (False: padded, for comparison)
        self.prefill_tokens = prefill_tokens
        self.max_new_tokens = max_new_tokens
        self.room = max_new_tokens  # free cache columns reserved at each (re)allocation
        self.temperature = temperature
        self.seed = seed
        self.processors = LogitsProcessorList()
        if repetition_penalty != 1.0:
            self.processors.append(RepetitionPenaltyInPlace(float(repetition_penalty)))
        if no_repeat_ngram_size > 0:
            self.processors.append(NoRepeatNGramLogitsProcessor(no_repeat_ngram_size))
        if temperature > 0:
            self.processors.append(TemperatureLogitsWarper(temperature))
            if top_p < 1.0:
                self.processors.append(TopPLogitsWarper(top_p))
        self.stop = StopStringCriteria(tokenizer, stop) if stop else None
        # greedy, with processors that only lower scores: the output layer screened by a
        # float16 copy (screen.py), on the lean forward, which can stop before that layer
        self.lipschitz = max(float(repetition_penalty), 1.0)  # how far a score error can move
        lowering = self.lean and temperature == 0 and repetition_penalty >= 1.0
        self.screen = ScreenedHead.of(model.get_output_embeddings()) if lowering else None
        config = model.config.get_text_config()
        self.layer_types = set(getattr(config, "layer_types", None) or [])
        self.window = getattr(config, "sliding_window", None)
        if not self.layer_types:
            sliding = self.window and getattr(config, "use_sliding_window", True)
            self.layer_types = {"sliding_attention" if sliding else "full_attention"}
        unknown = self.layer_types - {"full_attention", "sliding_attention"}
        if unknown:
            raise ValueError(f"unsupported attention layer types {sorted(unknown)}")
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos = torch.tensor([e for e in eos if e is not None], dtype=torch.long)

    @property
    def _screen(self) -> ScreenedHead | None:
        """The screen in use: none while the library's forward is (``lean`` off)."""
        return self.screen if self.lean else None

    def attention(self, mask: torch.Tensor, positions: torch.Tensor, queries: int) -> Any:
        """Additive attention masks for the last ``queries`` columns, per layer type: causal
        over real tokens, sliding windows measured in real positions (not slot columns)."""
        keys = mask.shape[1]
        column = torch.arange(keys)
        query = column[keys - queries :]
        allowed = (column[None, :] <= query[:, None]) & mask.bool()[:, None, :]  # [B, Q, K]
        allowed |= column[None, None, :] == query[None, :, None]  # padding attends to itself
        dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32

        def additive(allow: torch.Tensor) -> torch.Tensor:
            return torch.zeros((), dtype=dtype).masked_fill(~allow, torch.finfo(dtype).min)[:, None]

        masks = {}
        if "full_attention" in self.layer_types:
            masks["full_attention"] = additive(allowed)
        if "sliding_attention" in self.layer_types:
            distance = positions[:, keys - queries :, None] - positions[:, None, :]
            masks["sliding_attention"] = additive(allowed & (distance < self.window))
        return masks if len(masks) > 1 else next(iter(masks.values()))

    def _forward(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: Cache,
        logits: bool = True,
    ) -> torch.Tensor | None:
        """Run the new columns ``ids`` (the last of ``mask``/``positions``) through the model;
        the last column's logits (its output-layer input where the layer is screened), or
        only the cache (``logits=False``: no output layer, 60% of the teacher's parameters)."""
        queries = ids.shape[1]
        masks, position_ids = self.attention(mask, positions, queries), positions[:, -queries:]
        if self.lean:
            spans = [(0, queries, masks)]
            screened = self._screen is not None
            return lean.forward(
                self.model, ids, position_ids, cache, spans, logits, hidden_only=screened
            )
        out = self.model(
            input_ids=ids,
            attention_mask=masks,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
            logits_to_keep=1 if logits else torch.empty(0, dtype=torch.long),
        )
        return out.logits[:, -1, :].float() if logits else None

    def prefix_cache(self, prefix: list[int]) -> KV:
        """Keys and values of a shared prompt prefix, per layer (computed once, reused)."""
        cache = new_cache(self.model, len(prefix))
        mask = torch.ones(1, len(prefix), dtype=torch.long)
        with torch.inference_mode():
            self._forward(
                torch.tensor([prefix]), mask, torch.arange(len(prefix))[None], cache, False
            )
        return [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]

    def _prefill(
        self,
        rows: list[list[int]],
        pad_id: int,
        prefix: list[int],
        prefix_kv: KV | None,
        room: int,
        slots: int = 0,
    ) -> tuple[Cache, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prompts after the prefix, left-padded to one width, through the model, in a cache
        with ``room`` free positions after them and room for ``slots`` rows."""
        width = max(len(r) for r in rows)
        ids = torch.tensor([prefix + [pad_id] * (width - len(r)) + r for r in rows])
        mask = torch.tensor(
            [[1] * len(prefix) + [0] * (width - len(r)) + [1] * len(r) for r in rows]
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = new_cache(self.model, ids.shape[1] + room, slots)
        if prefix_kv is not None:
            for layer, keys, values in zip(cache.layers, *prefix_kv, strict=True):
                layer.start(keys, values, len(rows))
        columns = max(1, self.prefill_tokens // len(rows))  # prompt columns per forward pass
        starts = range(len(prefix), ids.shape[1], columns)
        if self.lean:  # the chunks layer by layer, padding skipped (see lean.forward)
            if self.pack:
                starts, ends = _chunks(mask[:, len(prefix) :], self.prefill_tokens, len(prefix))
            else:
                ends = [min(start + columns, ids.shape[1]) for start in starts]
            spans = [
                (
                    start - len(prefix),
                    end - len(prefix),
                    self.attention(mask[:, :end], positions[:, :end], end - start),
                )
                for start, end in zip(starts, ends, strict=True)
            ]
            new = slice(len(prefix), None)
            logits = lean.forward(
                self.model,
                ids[:, new],
                positions[:, new],
                cache,
                spans,
                real=mask[:, new].bool() if self.pack else None,
                hidden_only=self._screen is not None,
            )
            return cache, ids, mask, positions, logits
        for start in starts:  # only the last chunk's logits are used
            end = min(start + columns, ids.shape[1])
            logits = self._forward(
                ids[:, start:end], mask[:, :end], positions[:, :end], cache, start == starts[-1]
            )
        return cache, ids, mask, positions, logits

    def decode(
        self,
        rows: list[list[int]],
        pad_id: int,
        prefix: list[int] | None = None,
        prefix_kv: KV | None = None,
    ) -> list[Decoded]:
        """Outputs for ``rows`` in order, all in flight at once (one batch)."""
        done = dict(self.stream(rows, pad_id, len(rows), prefix, prefix_kv))
        return [done[i] for i in range(len(rows))]

    def stream(
        self,
        rows: list[list[int]],
        pad_id: int,
        slots: int,
        prefix: list[int] | None = None,
        prefix_kv: KV | None = None,
    ) -> Iterator[tuple[int, Decoded]]:
        """``(index, output)`` for each of ``rows`` (token ids after the shared ``prefix``)
        as it finishes, with up to ``slots`` in flight. Rows are admitted in the given order;
        give them longest first (a row joins only if it fits the grid's cached width).
        An error ends the stream as :class:`RowsFailed`, naming the rows then in flight."""
        flight: set[int] = set()
        try:
            for index, out in self._stream(rows, pad_id, slots, prefix or [], prefix_kv, flight):
                flight.discard(index)
                yield index, out
        except Exception as err:
            raise RowsFailed(sorted(flight), err) from err

    def _stream(
        self,
        rows: list[list[int]],
        pad_id: int,
        slots: int,
        prefix: list[int],
        prefix_kv: KV | None,
        flight: set[int],
    ) -> Iterator[tuple[int, Decoded]]:
        queue = deque(range(len(rows)))
        generator = torch.Generator().manual_seed(self.seed)
        # each step's logits are done with before the next step's: one buffer for them all
        with torch.inference_mode(), output_rows.reuse_logits():
            while queue:  # a new grid: the next `slots` rows in one batched prefill
                first = [queue.popleft() for _ in range(min(slots, len(queue)))]
                flight.update(first)
                cache, ids, mask, positions, logits = self._prefill(
                    [rows[i] for i in first], pad_id, prefix, prefix_kv, self.room, slots
                )
                now = time.perf_counter()
                grid = _Grid(ids[:, :0], mask[:, :0], positions[:, :0], [], [], [], [])
                finished = self._join(grid, first, ids, mask, positions, logits, now, generator)
                while True:
                    yield from self._retire(grid, finished, cache)
                    if not grid.prompt:
                        break
                    cached = grid.ids.shape[1] - 1 - len(prefix)
                    fits = [i for i in queue if len(rows[i]) <= cached]
                    free = slots - len(grid.prompt)
                    if fits and free:
                        admitted = fits[:free]
                        for i in admitted:
                            queue.remove(i)
                        flight.update(admitted)
                        finished = self._admit(
                            grid, cache, admitted, rows, pad_id, prefix, prefix_kv, generator
                        )
                        continue
                    self._make_room(grid, cache)
                    logits = self._forward(grid.ids[:, -1:], grid.mask, grid.positions, cache)
                    token, is_eos, stopped = self._choose(grid.ids, logits, generator)
                    grid.ids, grid.mask, grid.positions = _with_pending(
                        grid.ids, grid.mask, grid.positions, token
                    )
                    finished = self._record(grid, 0, token, is_eos, stopped)

    def _choose(
        self, ids: torch.Tensor, logits: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, list[bool], list[bool]]:
        """Each row's next token, whether it is an EOS, and whether it ends the row (EOS or
        a completed stop string). ``logits``: the output layer's input where it is screened."""
        if self._screen is not None:
            approximate = self._screen.approximate(logits)
            token, scores = self._screen.choose(
                logits, approximate, lambda s: self.processors(ids, s), self.lipschitz
            )
        else:
            scores = self.processors(ids, logits)
            if self.temperature > 0:
                probabilities = torch.softmax(scores, -1)
                token = torch.multinomial(probabilities, 1, generator=generator)[:, 0]
            else:
                token = greedy(scores)
        is_eos = torch.isin(token, self.eos)
        stopped = is_eos.clone()
        if self.stop is not None:
            stopped |= self.stop(torch.cat([ids, token[:, None]], 1), scores)
        return token, is_eos.tolist(), stopped.tolist()

    def _record(
        self, grid: _Grid, first: int, token: torch.Tensor, is_eos: list[bool], stopped: list[bool]
    ) -> list[bool]:
        """Add rows ``first:``'s new tokens; which rows of the grid have ended."""
        for row, tok, eos, stop in zip(
            range(first, len(grid.prompt)), token.tolist(), is_eos, stopped, strict=True
        ):
            if not eos:
                grid.new[row].append(tok)
            if stop:
                grid.reason[row] = "stop"
            elif len(grid.new[row]) >= self.max_new_tokens:
                grid.reason[row] = "length"
        return [r is not None for r in grid.reason]

    def _join(
        self,
        grid: _Grid,
        prompts: list[int],
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        logits: torch.Tensor,
        now: float,
        generator: torch.Generator,
    ) -> list[bool]:
        """Append prefilled rows (cached columns as in the grid) with their first token."""
        token, is_eos, stopped = self._choose(ids, logits, generator)
        first = len(grid.prompt)
        ids, mask, positions = _with_pending(ids, mask, positions, token)
        if first:
            ids = torch.cat([grid.ids, ids])
            mask = torch.cat([grid.mask, mask])
            positions = torch.cat([grid.positions, positions])
        grid.ids, grid.mask, grid.positions = ids, mask, positions
        grid.prompt += prompts
        grid.started += [now] * len(prompts)
        grid.new += [[] for _ in prompts]
        grid.reason += [None] * len(prompts)
        return self._record(grid, first, token, is_eos, stopped)

    def _retire(
        self, grid: _Grid, finished: list[bool], cache: Cache
    ) -> Iterator[tuple[int, Decoded]]:
        """Hand out the rows that ended and drop them from the grid and the cache."""
        if not any(finished):
            return
        now = time.perf_counter()
        for row, end in enumerate(finished):
            if end:
                decoded = Decoded(grid.new[row], grid.reason[row], now - grid.started[row])
                yield grid.prompt[row], decoded
        keep = torch.tensor([not f for f in finished]).nonzero()[:, 0]
        grid.keep(keep)
        for layer in cache.layers:
            layer.batch_select_indices(keep)

    def _admit(
        self,
        grid: _Grid,
        cache: Cache,
        admitted: list[int],
        rows: list[list[int]],
        pad_id: int,
        prefix: list[int],
        prefix_kv: KV | None,
        generator: torch.Generator,
    ) -> list[bool]:
        """Prefill ``admitted`` prompts over the prefix and add them to the grid, each prompt
        right-aligned to the grid's cached columns (padding in between, masked)."""
        now = time.perf_counter()
        part, ids, mask, positions, logits = self._prefill(
            [rows[i] for i in admitted], pad_id, prefix, prefix_kv, 0
        )
        p, width, length = len(prefix), ids.shape[1], grid.ids.shape[1] - 1
        gap = length - width
        pads = torch.zeros(len(admitted), gap, dtype=torch.long)
        ids = torch.cat([ids[:, :p], pads + pad_id, ids[:, p:]], 1)
        mask = torch.cat([mask[:, :p], pads, mask[:, p:]], 1)
        positions = torch.cat([positions[:, :p], pads, positions[:, p:]], 1)
        for big, small in zip(cache.layers, part.layers, strict=True):
            for rows_kv, new in zip(
                big.new_rows(len(admitted)), (small.keys, small.values), strict=True
            ):
                rows_kv[:, :, :p] = new[:, :, :p]
                rows_kv[:, :, p : p + gap] = 0  # masked, but must not be NaN (0 x NaN = NaN)
                rows_kv[:, :, p + gap :] = new[:, :, p:width]
        return self._join(grid, admitted, ids, mask, positions, logits, now, generator)

    def _make_room(self, grid: _Grid, cache: Cache) -> None:
        """Before a step that would overflow the cache: drop the columns no row uses any more
        (padding left by rows that have gone), with ``room`` free columns after them."""
        first = cache.layers[0]
        if first.length < first.capacity:
            return
        columns = grid.mask[:, :-1].bool().any(0).nonzero()[:, 0]
        for layer in cache.layers:
            layer.keep_columns(columns, len(columns) + self.room)
        keep = torch.cat([columns, torch.tensor([grid.ids.shape[1] - 1])])
        grid.ids, grid.mask = grid.ids[:, keep], grid.mask[:, keep]
        grid.positions = grid.positions[:, keep]
