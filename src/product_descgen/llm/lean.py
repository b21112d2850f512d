"""A decoder forward for the decode loop with fewer operations and fewer fresh tensors, for
Llama and Gemma 3 text models.

transformers' decoder layers are written for every use (training, output capture, hooks, any
cache); a serving step needs one path. This walks the same modules (so LoRA wrappers, nf4
layers and fused projection groups work as they do there) and does the same arithmetic in
the same order, with in-place updates where the library allocates: the residual adds, the
norms' scaling, rotary embeddings and the MLP's product. Decode steps give the library's
logits bit for bit (tested). A prompt's chunks run layer by layer, so an nf4 layer dequantises
its weight once per prompt; the price is every chunk's attention mask held at once (about
2 MB for the 12 demo prompts; rows x chunk x columns floats each).

Prompts skip their padding: each chunk's real tokens are packed for the norms, projections and
MLP, only attention sees the padded grid, and every chunk and layer writes into the same
buffers (``scratch.py``) instead of fresh ones that the speed workers' allocator pages in
each time. The numbers then differ from the library's by float rounding (other matrix
shapes), not by arithmetic. 22% of the demo student's prompt columns were padding (its 12
prompts in one process, ``benchmarks/student_prompts.py``: library 5.5 s, this forward on
the padded chunks 4.3 s, packed 2.6 s; docs/benchmarks.md, "Prompts without their
padding"), and 32% of the default teacher's at 32 rows in flight.

Decode steps and prompt chunks over a shared prompt prefix (the teacher's instructions and
worked examples, ``decoding.SlotLayer.start``) read its keys and values once for all rows
(``cascade.py``); the logits differ from the whole-row softmax's by float rounding (tested).

Gemma 3 differs from Llama in four places, all taken here: norms scale by ``1 + weight``,
queries and keys are normed per head, the attention and MLP outputs are normed before their
residual adds, and each layer type has its own rotary embedding. Only these two model
families take this path (``supports``); anything else keeps the library's forward."""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any

import torch
from transformers.activations import GELUTanh, SiLUActivation
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

from product_descgen.llm import cascade, nf4_cpu, scratch

FAMILIES = {("llama", "LlamaForCausalLM"), ("gemma3_text", "Gemma3ForCausalLM")}
CASCADE = True  # attention reads a shared prefix's keys and values once (``cascade.py``)


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports(model: Any) -> bool:
    """Whether ``model`` (optionally behind a peft wrapper) is a Llama or Gemma 3 text model
    this path computes exactly as transformers does."""
    base = _base(model)
    config = base.config
    return (
        (config.model_type, type(base).__name__) in FAMILIES
        and getattr(config, "pretraining_tp", 1) == 1
        and getattr(config, "attn_logit_softcapping", None) is None
        and getattr(config, "final_logit_softcapping", None) is None
        and not getattr(config, "use_bidirectional_attention", False)
        and config._attn_implementation in ALL_ATTENTION_FUNCTIONS
        and base.dtype == torch.float32
        and not base.training
    )


def _eps_scale(norm: Any) -> tuple[float, torch.Tensor]:
    """An RMS norm's epsilon and scale: Llama's weight, or Gemma 3's ``1 + weight``."""
    if isinstance(norm, Gemma3RMSNorm):
        return norm.eps, 1.0 + norm.weight
    return norm.variance_epsilon, norm.weight


def rms_norm(norm: Any, x: torch.Tensor) -> torch.Tensor:
    """``LlamaRMSNorm`` or ``Gemma3RMSNorm`` (float32 models): two new tensors, not three."""
    return _norm_into(norm, x, torch.empty_like(x))


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin``: two new tensors instead of five."""
    half = x.shape[-1] // 2
    out = x * cos
    turned = torch.empty_like(out)
    torch.neg(x[..., half:], out=turned[..., :half])
    turned[..., half:] = x[..., :half]
    return out.add_(turned.mul_(sin))


def _angles(inner: Any, hidden: torch.Tensor, positions: torch.Tensor, types: Any) -> dict:
    """Rotary ``(cos, sin)`` (``[rows, 1, columns, dim]``) by layer type (Gemma 3 has one
    embedding per type), or under ``None`` for models with one."""
    embed = inner.rotary_emb
    if "layer_type" not in inspect.signature(embed.forward).parameters:
        cos, sin = embed(hidden, positions)
        return {None: (cos.unsqueeze(1), sin.unsqueeze(1))}
    angles = {}
    for kind in set(types):
        cos, sin = embed(hidden, positions, kind)
        angles[kind] = cos.unsqueeze(1), sin.unsqueeze(1)
    return angles


Span = tuple[int, int, "torch.Tensor | dict[str, torch.Tensor]"]  # columns [start, end), masks


def forward(
    model: Any,
    ids: torch.Tensor,
    position_ids: torch.Tensor,
    cache: Any,
    spans: list[Span],
    logits: bool = True,
    real: torch.Tensor | None = None,
    hidden_only: bool = False,
) -> torch.Tensor | None:
    """The new columns ``ids`` through the model, keys and values into ``cache`` (one layer
    object per decoder layer); the last column's float logits, or None (``logits=False``), or
    (``hidden_only``) its final-normed hidden states, the output layer's input (``screen.py``).
    ``spans`` cut the columns into chunks, each with its attention masks: every layer runs
    them all, in order, before the next layer starts, so activations are one chunk's while an
    nf4 layer dequantises its weight once per prompt, not once per chunk.

    ``real`` (``[rows, columns]``, true for prompt tokens, false for padding; every row's last
    column real) marks a prompt: each chunk's real tokens are packed, so norms, projections
    and the MLP skip the padding and only attention sees the padded grid (padding's keys and
    values are zeros, masked as before), and every chunk and layer writes into the same
    buffers (``scratch.py``)."""
    base = _base(model)
    config, inner = base.config, base.model
    layer_types = getattr(config, "layer_types", None) or [None] * config.num_hidden_layers
    hidden = inner.embed_tokens(ids)
    angles = _angles(inner, hidden, position_ids, layer_types)
    prompt = real is not None and bool(real[:, -1].all())
    if prompt:  # each chunk's real tokens, row by row, one chunk after another
        picks = [real[:, start:end].contiguous() for start, end, _ in spans]
        places = [pick.view(-1).nonzero()[:, 0] for pick in picks]  # in the packed order
        hidden = torch.cat([hidden[:, start:end][pick] for (start, end, _), pick in
                            zip(spans, picks, strict=True)])  # fmt: skip
        bounds = torch.tensor([0] + [len(place) for place in places]).cumsum(0).tolist()
        largest = max(pick.numel() for pick in picks)
        buffers = scratch.Scratch(largest, hidden.dtype)
    for index, layer in enumerate(inner.layers[: config.num_hidden_layers]):
        kv = cache.layers[index]
        kind = layer_types[index]
        cos, sin = angles.get(kind, angles.get(None))
        with nf4_cpu.dequantise_once() if prompt or len(spans) > 1 else contextlib.nullcontext():
            for number, (start, end, masks) in enumerate(spans):
                mask = masks[kind] if isinstance(masks, dict) else masks
                angle = cos[:, :, start:end], sin[:, :, start:end]
                if prompt:  # a view: the residual adds write into `hidden`
                    part = hidden[bounds[number] : bounds[number + 1]]
                    grid = (*picks[number].shape, places[number])
                    _packed(config, layer, kv, part, angle, mask, grid, buffers)
                else:
                    _layer(config, layer, kv, hidden[:, start:end], angle, mask)
    if not logits:
        return None
    if prompt:  # each row's last column: the last chunk's last real token of every row
        last = bounds[-2] + picks[-1].sum(1).cumsum(0) - 1
        normed = rms_norm(inner.norm, hidden[last])
    else:
        normed = rms_norm(inner.norm, hidden[:, -1])
    return normed if hidden_only else base.lm_head(normed).float()


def _norms(layer: Any) -> tuple[Any, Any, Any]:
    """A layer's norms after the input's: of the attention output (Gemma 3) or None, of the
    MLP input, and of the MLP output (Gemma 3) or None."""
    if hasattr(layer, "pre_feedforward_layernorm"):  # Gemma 3
        return (layer.post_attention_layernorm, layer.pre_feedforward_layernorm,
                layer.post_feedforward_layernorm)  # fmt: skip
    return None, layer.post_attention_layernorm, None


def _attend(config: Any, attention: Any, query: Any, key: Any, value: Any, mask: Any) -> Any:
    attend = ALL_ATTENTION_FUNCTIONS[config._attn_implementation]
    sliding = hasattr(attention, "is_sliding")  # Gemma 3 passes its window (masks apply it)
    window = {"sliding_window": attention.sliding_window} if sliding else {}
    out, _ = attend(
        attention, query, key, value, mask, dropout=0.0, scaling=attention.scaling, **window
    )
    return out


def _layer(
    config: Any,
    layer: Any,
    kv: Any,
    part: torch.Tensor,
    angle: tuple[torch.Tensor, torch.Tensor],
    mask: Any,
) -> None:
    """One decoder layer over the columns ``part`` (``[rows, columns, hidden]``), in place."""
    attention, mlp = layer.self_attn, layer.mlp
    after_attention, before_mlp, after_mlp = _norms(layer)
    rows, columns = part.shape[:2]
    x = rms_norm(layer.input_layernorm, part)
    shape = (rows, columns, -1, attention.head_dim)
    query = attention.q_proj(x).view(shape).transpose(1, 2)
    key = attention.k_proj(x).view(shape).transpose(1, 2)
    value = attention.v_proj(x).view(shape).transpose(1, 2)
    if hasattr(attention, "q_norm"):  # Gemma 3: queries and keys normed per head
        query, key = rms_norm(attention.q_norm, query), rms_norm(attention.k_norm, key)
    query, key = rotary(query, *angle), rotary(key, *angle)
    key, value = kv.update(key, value)
    shared = getattr(kv, "shared", None)
    if columns == 1 and isinstance(mask, torch.Tensor):  # a decode step
        if CASCADE and shared is not None and rows > 1:  # one row reads its prefix once anyway
            out = cascade.decode_step(attention, query, key, value, mask, shared)
        else:
            out = cascade.own(attention, query, key, value, mask)[0]
    else:
        out = _attend(config, attention, query, key, value, mask)
    out = attention.o_proj(out.reshape(rows, columns, -1))
    part.add_(out if after_attention is None else rms_norm(after_attention, out))
    x = rms_norm(before_mlp, part)
    out = mlp.down_proj(_activate(mlp.act_fn, mlp.gate_proj(x)).mul_(mlp.up_proj(x)))
    part.add_(out if after_mlp is None else rms_norm(after_mlp, out))


def _activate(act: Any, gate: torch.Tensor) -> torch.Tensor:
    """``act(gate)``, in place where it is SiLU or PyTorch's tanh GELU (same kernels)."""
    if type(act) in (torch.nn.SiLU, SiLUActivation):  # both F.silu
        return torch.nn.functional.silu(gate, inplace=True)
    if isinstance(act, GELUTanh) and isinstance(act.act, functools.partial):
        return torch.ops.aten.gelu_(gate, approximate="tanh")
    return act(gate)


def _packed(
    config: Any,
    layer: Any,
    kv: Any,
    part: torch.Tensor,
    angle: tuple[torch.Tensor, torch.Tensor],
    mask: Any,
    grid: tuple[int, int, torch.Tensor],
    buffers: scratch.Scratch,
) -> None:
    """One decoder layer over a chunk's real tokens ``part`` (``[tokens, hidden]``; ``grid``:
    the chunk's rows and columns and where in them, flattened, each token is), in place, the
    same arithmetic as :func:`_layer` written into ``buffers``."""
    attention, mlp = layer.self_attn, layer.mlp
    after_attention, before_mlp, after_mlp = _norms(layer)
    rows, columns, places = grid
    tokens, width = part.shape
    x = _norm_into(layer.input_layernorm, part, buffers.get("x", tokens, width))

    def spare(size: int) -> Any:  # free until the rotary embeddings
        return lambda: buffers.get("spare", tokens, size)

    def heads(projection: Any, name: str, norm: Any = None) -> torch.Tensor:
        size = _features(projection)
        out = buffers.get(name, tokens, size)
        scratch.linear_into(projection, x, out, spare(size))
        if norm is not None:  # per head, before padding joins (it stays zero)
            split = out.view(tokens, -1, attention.head_dim)
            _norm_into(norm, split, split, spare(size)().view(split.shape))
        padded = buffers.get("grid_" + name, rows * columns, size).zero_()
        padded.index_copy_(0, places, out)
        return padded.view(rows, columns, -1, attention.head_dim).transpose(1, 2)

    query = heads(attention.q_proj, "q", getattr(attention, "q_norm", None))
    key = heads(attention.k_proj, "k", getattr(attention, "k_norm", None))
    value = heads(attention.v_proj, "v")
    turned = buffers.get("spare", rows * columns, query.shape[1] * query.shape[-1])
    _rotary_in_place(query, *angle, turned)
    _rotary_in_place(key, *angle, turned)
    key, value = kv.update(key, value)
    shared = getattr(kv, "shared", None)
    if CASCADE and shared is not None and isinstance(mask, torch.Tensor):
        gathered = cascade.prompt_chunk(attention, query, key, value, mask, shared, places)
    else:
        out = _attend(config, attention, query, key, value, mask).reshape(rows * columns, -1)
        gathered = buffers.get("x", tokens, out.shape[-1])
        torch.index_select(out, 0, places, out=gathered)
    projected = buffers.get("q", tokens, width)
    scratch.linear_into(attention.o_proj, gathered, projected, spare(width))
    if after_attention is not None:  # `x` is free again
        _norm_into(after_attention, projected, projected, buffers.get("x", tokens, width))
    part.add_(projected)
    x = _norm_into(before_mlp, part, buffers.get("x", tokens, width))
    size = _features(mlp.gate_proj)
    gate, up = buffers.get("gate", tokens, size), buffers.get("up", tokens, size)
    scratch.linear_into(mlp.gate_proj, x, gate, spare(size))
    scratch.linear_into(mlp.up_proj, x, up, spare(size))
    down = buffers.get("q", tokens, width)
    scratch.linear_into(mlp.down_proj, _activate(mlp.act_fn, gate).mul_(up), down, spare(width))
    if after_mlp is not None:  # `x` is free again
        _norm_into(after_mlp, down, down, buffers.get("x", tokens, width))
    part.add_(down)


def _features(projection: Any) -> int:
    """Output features of a linear layer, or of the one a LoRA layer wraps."""
    return getattr(projection, "out_features", None) or projection.base_layer.out_features


def _norm_into(
    norm: Any, x: torch.Tensor, out: torch.Tensor, spare: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`rms_norm` written into ``out``, which may be ``x`` itself if ``spare`` (the
    same shape) takes the squares."""
    eps, scale = _eps_scale(norm)
    variance = torch.pow(x, 2, out=out if spare is None else spare).mean(-1, keepdim=True)
    variance.add_(eps).rsqrt_()
    return torch.mul(x, variance, out=out).mul_(scale)


def _rotary_in_place(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, spare: torch.Tensor
) -> None:
    """:func:`rotary` in place on ``x`` (``spare``: at least as many elements)."""
    half = x.shape[-1] // 2
    turned = spare.view(-1)[: x.numel()].view(x.shape)  # spare: contiguous
    torch.neg(x[..., half:], out=turned[..., :half])
    turned[..., half:] = x[..., :half]
    x.mul_(cos).add_(turned.mul_(sin))
