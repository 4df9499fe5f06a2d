"""The custom Metal kernels of `metal/`, run through a kernel factory.

`mx.fast.metal_kernel` runs them on an Apple GPU; `metal.emulator.MetalKernel` runs the very same
source text on the CPU. Everything else (which kernel for how many tokens, grids, threadgroups,
templates, the few MLX ops between kernels) is this one module, parameterised only by the
factory, so the emulator tests exercise the code that runs on a Mac.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Mapping, Sequence

import mlx.core as mx

from . import reference
from .layout import ExpertWeights, QuantizedKV
from .moe_cost import REFERENCE_GPU, AppleGPU, ExpertShape, grouped_min_tokens

KernelFactory = Callable[..., Callable[..., Sequence[mx.array]]]
"""`mx.fast.metal_kernel` or `metal.emulator.MetalKernel`: same constructor, same call."""

# Up to this many queries, attention runs one threadgroup per query (MLX's sdpa_vector limit).
DECODE_ATTENTION_MAX_QUERIES = 8
# A decode query's keys are split across threadgroups in runs of about this many keys.
KEYS_PER_SPLIT = 256
MAX_SPLITS = 64
THREADGROUP_MEMORY_BYTES = 32 * 1024

# Thread geometry each kernel's source is written for (see the header comment of each file).
_GEMV_THREADS = 256
_GATE_UP_COLUMNS_PER_THREADGROUP = 8
_DOWN_ROWS_PER_THREADGROUP = 16
_FEW_TOKENS_MAX = 32  # moe_few_tokens: the most tokens an expert's registers hold at once
_GROUPED_THREADS = 128
_GROUPED_TILE_ROWS = 32  # (token, expert) pairs per tile
_GROUPED_TILE_OUTPUTS = 64  # weight rows per tile
_ATTENTION_SIMDGROUPS = 4  # both attention kernels: threadgroups of 128 threads
_PREFILL_ATTENTION_ROWS = 32  # (query, head) rows per threadgroup
_PREFILL_ATTENTION_KEYS = 32


@dataclass(frozen=True)
class _KernelSource:
    """One kernel file of metal/, the headers it needs and its parameter names."""

    body: str
    headers: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    row_contiguous: bool = True
    variant: str = ""  # a body fragment prepended to `body` (the attention kernels' K/V reads)

    @property
    def name(self) -> str:
        suffix = self.variant.removeprefix("attention").removesuffix("_reads.metal")
        return "gpt_oss_" + self.body.removesuffix(".metal") + suffix

    @property
    def files(self) -> tuple[str, ...]:
        return (*((self.variant,) if self.variant else ()), self.body, *self.headers)


_GATE_UP_DECODE = _KernelSource(
    "moe_gate_up_swiglu.metal",
    ("mxfp4.h", "swiglu.h"),
    ("x", "expert_ids", "gate_up_blocks", "gate_up_scales", "gate_up_bias", "hidden_size",
     "intermediate_size", "swiglu_limit", "swiglu_alpha"),
    ("activations",),
)
_DOWN_DECODE = _KernelSource(
    "moe_down_accumulate.metal",
    ("mxfp4.h",),
    ("activations", "expert_ids", "routing_weights", "down_blocks", "down_scales", "down_bias",
     "hidden_size", "intermediate_size", "top_k"),
    ("out",),
)
_GATE_UP_FEW_TOKENS = _KernelSource(
    "moe_few_tokens_gate_up_swiglu.metal",
    ("mxfp4.h", "swiglu.h", "moe_few_tokens.h"),
    ("x", "sorted_pairs", "row_offsets", "active_experts", "gate_up_blocks", "gate_up_scales",
     "gate_up_bias", "hidden_size", "intermediate_size", "top_k", "experts", "swiglu_limit",
     "swiglu_alpha"),
    ("activations",),
)
_DOWN_FEW_TOKENS = _KernelSource(
    "moe_few_tokens_down.metal",
    ("mxfp4.h", "moe_few_tokens.h"),
    ("activations", "sorted_pairs", "row_offsets", "active_experts", "routing_weights", "down_blocks",
     "down_scales", "down_bias", "hidden_size", "intermediate_size", "experts"),
    ("pair_out",),
)
_GATE_UP_GROUPED = _KernelSource(
    "moe_grouped_gate_up_swiglu.metal",
    ("mxfp4.h", "swiglu.h", "simdgroup_fragment.h", "moe_grouped.h"),
    ("x", "sorted_pairs", "row_offsets", "tile_offsets", "gate_up_blocks", "gate_up_scales",
     "gate_up_bias", "hidden_size", "intermediate_size", "top_k", "experts", "swiglu_limit",
     "swiglu_alpha"),
    ("activations",),
)
_DOWN_GROUPED = _KernelSource(
    "moe_grouped_down.metal",
    ("mxfp4.h", "simdgroup_fragment.h", "moe_grouped.h"),
    ("activations", "sorted_pairs", "row_offsets", "tile_offsets", "routing_weights", "down_blocks",
     "down_scales", "down_bias", "hidden_size", "intermediate_size", "experts"),
    ("pair_out",),
)
_KV16, _KV8 = "attention_kv16_reads.metal", "attention_kv8_reads.metal"
_KV8_INPUTS = ("k_scales", "v_scales")


def _attention_sources(body: str, headers: tuple[str, ...], scalars: tuple[str, ...]) -> dict[bool, _KernelSource]:
    """An attention kernel's 16-bit and 8-bit K/V variants, keyed by whether K/V are 8-bit;
    strided q and cache views are read in place."""
    return {
        quantized: _KernelSource(
            body, headers, ("q", "k", "v", "sinks", *(_KV8_INPUTS if quantized else ()), *scalars), ("out",),
            row_contiguous=False, variant=_KV8 if quantized else _KV16,
        )
        for quantized in (False, True)
    }


_ATTENTION_DECODE = _attention_sources("attention_decode.metal", ("attention.h",), ("scale", "window", "splits"))
_ATTENTION_DECODE_COMBINE = _KernelSource(
    "attention_decode_combine.metal", ("attention.h",), ("partials",), ("out",)
)
_ATTENTION_PREFILL = _attention_sources(
    "attention_prefill.metal", ("attention.h", "simdgroup_fragment.h"), ("scale", "window")
)

KERNEL_SOURCES: tuple[_KernelSource, ...] = (
    _GATE_UP_DECODE, _DOWN_DECODE, _GATE_UP_FEW_TOKENS, _DOWN_FEW_TOKENS, _GATE_UP_GROUPED, _DOWN_GROUPED,
    *_ATTENTION_DECODE.values(), _ATTENTION_DECODE_COMBINE, *_ATTENTION_PREFILL.values(),
)


def _read(file: str) -> str:
    return (resources.files("gpt_oss_desktop.metal") / file).read_text(encoding="utf-8")


class MetalKernels:
    """`moe` and `attention` with the arguments of `kernels.reference`, on the custom kernels.

    `read_source` reads a file of metal/ (the self-check's tests point it at modified copies);
    `gpu` is the GPU whose assumed bandwidth and arithmetic rates pick the token count from which
    the experts run grouped (kernels.moe_cost); `replaced` names the entry points (moe_decode,
    moe_few_tokens, moe_grouped, attention_decode, attention_prefill) that `moe` and `attention`
    send to their MLX twins instead, because the self-check (kernels.kernel_check) found them
    broken on this machine.
    """

    def __init__(
        self,
        factory: KernelFactory,
        read_source: Callable[[str], str] = _read,
        gpu: AppleGPU = REFERENCE_GPU,
    ) -> None:
        self._factory = factory
        self.read_source = read_source
        self.gpu = gpu
        self.replaced: frozenset[str] = frozenset()
        self._kernels: dict[_KernelSource, Callable[..., Sequence[mx.array]]] = {}

    def _run(
        self,
        source: _KernelSource,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, tuple[Sequence[int], mx.Dtype]],
        *,
        grid: tuple[int, int, int],
        threadgroup: tuple[int, int, int],
        template: Sequence[tuple[str, Any]] = (),
    ) -> list[mx.array]:
        kernel = self._kernels.get(source)
        if kernel is None:
            kernel = self._factory(
                name=source.name,
                input_names=list(source.inputs),
                output_names=list(source.outputs),
                source="".join(self.read_source(file) for file in (source.variant, source.body) if file),
                header="\n".join(self.read_source(header) for header in source.headers),
                ensure_row_contiguous=source.row_contiguous,
            )
            self._kernels[source] = kernel
        return list(
            kernel(
                inputs=[inputs[name] for name in source.inputs],
                output_shapes=[outputs[name][0] for name in source.outputs],
                output_dtypes=[outputs[name][1] for name in source.outputs],
                grid=grid,
                threadgroup=threadgroup,
                template=list(template) or None,
            )
        )

    # -- Experts --------------------------------------------------------------------------------

    def moe(
        self,
        x: mx.array,
        indices: mx.array,
        weights: mx.array,
        experts: ExpertWeights,
        *,
        swiglu_limit: float,
        swiglu_alpha: float,
    ) -> mx.array:
        """Per-token GEMVs for one token, GEMVs that read each chosen expert's rows once for all
        its tokens below grouped_min_tokens, grouped GEMMs from there on."""
        tokens = x.shape[0]
        if tokens >= self.grouped_min_tokens(experts, indices.shape[1]):
            run = self.moe_grouped
        else:
            run = self.moe_few_tokens if tokens > 1 else self.moe_decode
        if run.__name__ in self.replaced:
            run = reference.moe
        return run(x, indices, weights, experts, swiglu_limit=swiglu_limit, swiglu_alpha=swiglu_alpha)

    def grouped_min_tokens(self, experts: ExpertWeights, top_k: int) -> int:
        """The token count from which the grouped GEMMs are projected to beat the few-token
        GEMVs for these experts on this GPU (kernels.moe_cost)."""
        shape = ExpertShape(experts.num_experts, top_k, experts.hidden_size, experts.intermediate_size)
        return grouped_min_tokens(shape, self.gpu)

    def moe_decode(
        self,
        x: mx.array,
        indices: mx.array,
        weights: mx.array,
        experts: ExpertWeights,
        *,
        swiglu_limit: float,
        swiglu_alpha: float,
    ) -> mx.array:
        """moe_gate_up_swiglu then moe_down_accumulate: two dispatches per layer."""
        tokens, top_k = indices.shape
        hidden, columns = _check_expert_shapes(x, experts)
        expert_ids = indices.astype(mx.uint32)
        (activations,) = self._run(
            _GATE_UP_DECODE,
            {
                "x": x,
                "expert_ids": expert_ids,
                **_gate_up_inputs(experts, hidden, columns),
                "swiglu_limit": float(swiglu_limit),
                "swiglu_alpha": float(swiglu_alpha),
            },
            {"activations": ((tokens, top_k, columns), x.dtype)},
            grid=(_GEMV_THREADS * (columns // _GATE_UP_COLUMNS_PER_THREADGROUP), tokens, 1),
            threadgroup=(_GEMV_THREADS, 1, 1),
            template=[("TOP_K", top_k), ("OutT", x.dtype)],
        )
        (out,) = self._run(
            _DOWN_DECODE,
            {
                "activations": activations,
                "expert_ids": expert_ids,
                "routing_weights": weights,
                **_down_inputs(experts, hidden, columns),
                "top_k": top_k,
            },
            {"out": ((tokens, hidden), x.dtype)},
            grid=(_GEMV_THREADS * (hidden // _DOWN_ROWS_PER_THREADGROUP), tokens, 1),
            threadgroup=(_GEMV_THREADS, 1, 1),
            template=[("OutT", x.dtype)],
        )
        return out

    def moe_few_tokens(
        self,
        x: mx.array,
        indices: mx.array,
        weights: mx.array,
        experts: ExpertWeights,
        *,
        swiglu_limit: float,
        swiglu_alpha: float,
    ) -> mx.array:
        """moe_few_tokens_gate_up_swiglu then moe_few_tokens_down: one threadgroup column per
        expert that has tokens, so each chosen expert's rows are read once for all its tokens
        (decode of a few tokens: a short prompt, a tool result, speculative drafts).

        The table of experts with tokens is built with MLX ops (no host sync): the grid has a
        slot for the most experts P pairs can choose, and unused slots return at once.
        """
        tokens, top_k = indices.shape
        hidden, columns = _check_expert_shapes(x, experts)
        num_experts = experts.num_experts
        pairs = tokens * top_k
        sorted_pairs, counts, row_offsets = _pairs_by_expert(indices, num_experts)
        slots = min(num_experts, pairs)
        # The experts with pairs in ascending order first (distinct sort keys), then E.
        expert_ids = mx.arange(num_experts, dtype=mx.int32)
        order = mx.argsort(mx.where(counts > 0, expert_ids, expert_ids + num_experts))[:slots]
        active_experts = mx.where(counts[order] > 0, order, num_experts).astype(mx.uint32)
        grouping = dict(sorted_pairs=sorted_pairs, row_offsets=row_offsets, active_experts=active_experts)
        # Registers hold (row, token) sums for up to max_tokens tokens an expert; a token's
        # experts are distinct, so an expert has at most `tokens` of them.
        max_tokens = min(_FEW_TOKENS_MAX, 1 << (tokens - 1).bit_length())
        stage = _stage_type(x.dtype)

        (activations,) = self._run(
            _GATE_UP_FEW_TOKENS,
            {
                "x": x,
                **grouping,
                **_gate_up_inputs(experts, hidden, columns),
                "top_k": top_k,
                "experts": num_experts,
                "swiglu_limit": float(swiglu_limit),
                "swiglu_alpha": float(swiglu_alpha),
            },
            {"activations": ((pairs, columns), x.dtype)},
            grid=(_GEMV_THREADS * (columns // _GATE_UP_COLUMNS_PER_THREADGROUP), slots, 1),
            threadgroup=(_GEMV_THREADS, 1, 1),
            template=[("MAX_TOKENS", max_tokens), ("StageT", stage), ("OutT", x.dtype)],
        )
        (pair_out,) = self._run(
            _DOWN_FEW_TOKENS,
            {
                "activations": activations,
                **grouping,
                "routing_weights": weights.flatten(),
                **_down_inputs(experts, hidden, columns),
                "experts": num_experts,
            },
            {"pair_out": ((pairs, hidden), mx.float32)},
            grid=(_GEMV_THREADS * (hidden // _DOWN_ROWS_PER_THREADGROUP), slots, 1),
            threadgroup=(_GEMV_THREADS, 1, 1),
            template=[("MAX_TOKENS", max_tokens), ("StageT", stage)],
        )
        return pair_out.reshape(tokens, top_k, hidden).sum(axis=1).astype(x.dtype)

    def moe_grouped(
        self,
        x: mx.array,
        indices: mx.array,
        weights: mx.array,
        experts: ExpertWeights,
        *,
        swiglu_limit: float,
        swiglu_alpha: float,
    ) -> mx.array:
        """The (token, expert) pairs sorted by expert, then two tiled GEMMs over tiles of one
        expert's pairs, so each expert's weights are read once per 32 of its tokens.

        The tile table is built with MLX ops (no host sync): the grid is sized for the most
        tiles P pairs can need, and surplus threadgroups return at once.
        """
        tokens, top_k = indices.shape
        hidden, columns = _check_expert_shapes(x, experts)
        num_experts = experts.num_experts
        pairs = tokens * top_k
        sorted_pairs, counts, row_offsets = _pairs_by_expert(indices, num_experts)
        tiles = (counts + _GROUPED_TILE_ROWS - 1) // _GROUPED_TILE_ROWS
        tile_offsets = mx.concatenate([mx.zeros((1,), mx.int32), mx.cumsum(tiles)])
        max_tiles = math.ceil(pairs / _GROUPED_TILE_ROWS) + min(num_experts, pairs)
        grouping = dict(sorted_pairs=sorted_pairs, row_offsets=row_offsets, tile_offsets=tile_offsets)
        stage = _stage_type(x.dtype)

        (activations,) = self._run(
            _GATE_UP_GROUPED,
            {
                "x": x,
                **grouping,
                **_gate_up_inputs(experts, hidden, columns),
                "top_k": top_k,
                "experts": num_experts,
                "swiglu_limit": float(swiglu_limit),
                "swiglu_alpha": float(swiglu_alpha),
            },
            {"activations": ((pairs, columns), x.dtype)},
            grid=(_GROUPED_THREADS * (2 * columns // _GROUPED_TILE_OUTPUTS), max_tiles, 1),
            threadgroup=(_GROUPED_THREADS, 1, 1),
            template=[("OutT", x.dtype), ("StageT", stage)],
        )
        (pair_out,) = self._run(
            _DOWN_GROUPED,
            {
                "activations": activations,
                **grouping,
                "routing_weights": weights.flatten(),
                **_down_inputs(experts, hidden, columns),
                "experts": num_experts,
            },
            {"pair_out": ((pairs, hidden), mx.float32)},
            grid=(_GROUPED_THREADS * math.ceil(hidden / _GROUPED_TILE_OUTPUTS), max_tiles, 1),
            threadgroup=(_GROUPED_THREADS, 1, 1),
            template=[("StageT", stage)],
        )
        return pair_out.reshape(tokens, top_k, hidden).sum(axis=1).astype(x.dtype)

    # -- Attention ------------------------------------------------------------------------------

    def attention(
        self, q: mx.array, k: mx.array, v: mx.array, sinks: mx.array, *, scale: float, window: int | None
    ) -> mx.array:
        """One threadgroup per query up to DECODE_ATTENTION_MAX_QUERIES queries, tiles beyond.
        8-bit K and V (QuantizedKV) run the kernels' 8-bit variants, checked apart (`_kv8`)."""
        decode = q.shape[2] <= DECODE_ATTENTION_MAX_QUERIES
        run = self.attention_decode if decode else self.attention_prefill
        if run.__name__ + ("_kv8" if isinstance(k, QuantizedKV) else "") in self.replaced:
            run = reference.attention
        return run(q, k, v, sinks, scale=scale, window=window)

    def attention_decode(
        self,
        q: mx.array,
        k: mx.array | QuantizedKV,
        v: mx.array | QuantizedKV,
        sinks: mx.array,
        *,
        scale: float,
        window: int | None,
        keys_per_split: int = KEYS_PER_SPLIT,
    ) -> mx.array:
        """attention_decode, plus attention_decode_combine when the visible keys are split
        across threadgroups (long full-attention contexts; never a 128-key sliding window)."""
        batch, heads, queries, dims = q.shape
        kv_heads, keys = k.shape[1], k.shape[2]
        group = _check_attention_shapes(q, k, v, sinks)
        _check_threadgroup_memory("attention_decode", 4 * _ATTENTION_SIMDGROUPS * group * (dims + 2))
        visible = keys if window is None else min(keys, window)
        splits = min(MAX_SPLITS, max(1, math.ceil(visible / keys_per_split)))
        split_shape = (batch, kv_heads, queries, splits, group, dims + 2)
        (out,) = self._run(
            _ATTENTION_DECODE[isinstance(k, QuantizedKV)],
            {"q": q, **_kv_inputs(k, v), "sinks": sinks, "scale": float(scale),
             "window": window or 0, "splits": splits},
            {"out": (split_shape, mx.float32) if splits > 1 else ((batch, heads, queries, dims), q.dtype)},
            grid=(32 * _ATTENTION_SIMDGROUPS * splits, queries * kv_heads, batch),
            threadgroup=(32 * _ATTENTION_SIMDGROUPS, 1, 1),
            template=[("OutT", mx.float32 if splits > 1 else q.dtype), ("G", group), ("D", dims)],
        )
        if splits == 1:
            return out
        (combined,) = self._run(
            _ATTENTION_DECODE_COMBINE,
            {"partials": out},
            {"out": ((batch, heads, queries, dims), q.dtype)},
            grid=(dims, queries * heads, batch),
            threadgroup=(dims, 1, 1),
            template=[("OutT", q.dtype), ("G", group), ("D", dims)],
        )
        return combined

    def attention_prefill(
        self,
        q: mx.array,
        k: mx.array | QuantizedKV,
        v: mx.array | QuantizedKV,
        sinks: mx.array,
        *,
        scale: float,
        window: int | None,
    ) -> mx.array:
        """attention_prefill: tiles of 32 (query, head) rows against tiles of 32 keys, on 8x8
        SIMD-group matrices, K and V staged in k's own type when it is 16-bit (exact, and half
        the threadgroup memory of float), in float when 8-bit (dequantised while staged)."""
        batch, heads, queries, dims = q.shape
        kv_heads = k.shape[1]
        group = _check_attention_shapes(q, k, v, sinks)
        if _PREFILL_ATTENTION_ROWS % group or dims % 8 or dims > 64:
            raise ValueError(
                f"attention_prefill needs a GQA group dividing 32 and a head size that is a multiple "
                f"of 8 up to 64, got {group} and {dims}"
            )
        stage = _stage_type(k.dtype)
        _check_threadgroup_memory(
            "attention_prefill", 2 * _PREFILL_ATTENTION_KEYS * (dims + 8) * stage.size
        )
        rows = _PREFILL_ATTENTION_ROWS
        queries_per_threadgroup = rows // group
        (out,) = self._run(
            _ATTENTION_PREFILL[isinstance(k, QuantizedKV)],
            {"q": q, **_kv_inputs(k, v), "sinks": sinks, "scale": float(scale),
             "window": window or 0},
            {"out": ((batch, heads, queries, dims), q.dtype)},
            grid=(32 * _ATTENTION_SIMDGROUPS * math.ceil(queries / queries_per_threadgroup), kv_heads,
                  batch),
            threadgroup=(32 * _ATTENTION_SIMDGROUPS, 1, 1),
            template=[("OutT", q.dtype), ("StageT", stage), ("G", group), ("D", dims)],
        )
        return out


def _kv_inputs(k: mx.array | QuantizedKV, v: mx.array | QuantizedKV) -> dict[str, mx.array]:
    """K and V as the kernel variant for them reads them: arrays, or int8 values and scales."""
    if isinstance(k, QuantizedKV) != isinstance(v, QuantizedKV):
        raise ValueError("keys and values must both be 8-bit (QuantizedKV) or both not")
    if isinstance(k, QuantizedKV):
        return {"k": k.values, "v": v.values, "k_scales": k.scales, "v_scales": v.scales}
    return {"k": k, "v": v}


def _pairs_by_expert(indices: mx.array, num_experts: int) -> tuple[mx.array, mx.array, mx.array]:
    """The (token, expert) pairs sorted by expert, each expert's pair count, and where each
    expert's run of pairs starts (E + 1 offsets), all built with MLX ops (no host sync)."""
    expert_of_pair = indices.flatten().astype(mx.uint32)
    sorted_pairs = mx.argsort(expert_of_pair).astype(mx.uint32)
    counts = mx.zeros((num_experts,), mx.int32).at[expert_of_pair].add(1)
    row_offsets = mx.concatenate([mx.zeros((1,), mx.int32), mx.cumsum(counts)])
    return sorted_pairs, counts, row_offsets


def _gate_up_inputs(experts: ExpertWeights, hidden: int, columns: int) -> dict[str, mx.array | int]:
    """The gate_up projection's tensors and widths, as every MoE gate_up kernel names them."""
    return {"gate_up_blocks": experts.gate_up_blocks, "gate_up_scales": experts.gate_up_scales,
            "gate_up_bias": experts.gate_up_bias, "hidden_size": hidden, "intermediate_size": columns}


def _down_inputs(experts: ExpertWeights, hidden: int, columns: int) -> dict[str, mx.array | int]:
    """The down projection's tensors and widths, as every MoE down kernel names them."""
    return {"down_blocks": experts.down_blocks, "down_scales": experts.down_scales,
            "down_bias": experts.down_bias, "hidden_size": hidden, "intermediate_size": columns}


def _stage_type(dtype: mx.Dtype) -> mx.Dtype:
    """The type an operand is staged in threadgroup memory: its own when 16-bit (exact, half the
    memory of float), else float."""
    return dtype if dtype in (mx.float16, mx.bfloat16) else mx.float32


def _check_attention_shapes(q: mx.array, k: mx.array, v: mx.array, sinks: mx.array) -> int:
    """The GQA group size, after checking the shapes the attention kernels are written for."""
    if q.ndim != 4 or k.ndim != 4 or k.shape != v.shape or q.shape[::3] != k.shape[::3]:
        raise ValueError(
            f"attention needs q [B, Hq, L, D] and k, v [B, Hkv, S, D]; got {q.shape}, {k.shape}, {v.shape}"
        )
    heads, kv_heads, dims = q.shape[1], k.shape[1], q.shape[3]
    if heads % kv_heads or sinks.shape != (heads,):
        raise ValueError(
            f"{heads} query heads, {kv_heads} KV heads and sinks of shape {sinks.shape} do not fit"
        )
    if q.shape[2] > k.shape[2]:
        raise ValueError(f"{q.shape[2]} queries but only {k.shape[2]} keys: keys must end at the last query")
    if not (dims <= 32 and dims & (dims - 1) == 0 or dims % 32 == 0):
        raise ValueError(
            f"the attention kernels need a head size that is a power of two up to 32 or a multiple "
            f"of 32, got {dims}"
        )
    return heads // kv_heads


def _check_threadgroup_memory(kernel: str, size: int) -> None:
    if size > THREADGROUP_MEMORY_BYTES:
        raise ValueError(
            f"{kernel} would need {size} bytes of threadgroup memory, Metal allows {THREADGROUP_MEMORY_BYTES}"
        )


def _check_expert_shapes(x: mx.array, experts: ExpertWeights) -> tuple[int, int]:
    """(hidden, intermediate) sizes, after checking they are whole MXFP4 groups and agree."""
    hidden, columns = experts.hidden_size, experts.intermediate_size
    if hidden % 32 or columns % 32:
        raise ValueError(f"MXFP4 experts need sizes that are multiples of 32, got H={hidden}, I={columns}")
    if x.shape[-1] != hidden or experts.gate_up_blocks.shape[-1] * 8 != hidden:
        raise ValueError(f"tokens of width {x.shape[-1]} do not match experts of hidden size {hidden}")
    return hidden, columns
