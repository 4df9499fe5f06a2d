"""Projected speed of the Metal kernels on Apple GPUs: a PROJECTION with its arithmetic, never a
measurement (no Mac runs here). Prints the tables of gpt_oss_desktop/metal/README.md, section
"Projections", which tests/bench/test_metal_projection.py keeps equal to this output.

    python bench/metal_projection.py

The GPU figures (bandwidth, cores, clock, hence FP32/FP16 rate) and the efficiency assumptions
have one home, mlx_model/kernels/moe_cost.py, which also decides the grouped-vs-decode
threshold; this script adds the model's dense layers and attention around its expert costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpt_oss_desktop.mlx_model import PUBLISHED, ModelConfig, moe_cost

# Stated assumptions (Apple GPU families 7-9, M1-M4), from philipturner/metal-benchmarks
# (README, "On-Chip Memory": per core, 384-3072 threads and ~60 KB of threadgroup memory; Metal's
# own limits per threadgroup: 1024 threads, 32 KiB).
THREADS_PER_CORE = 3072  # the most resident threads a core holds, at low register use
THREADGROUP_MEMORY_PER_CORE = 60 * 1024
DECODE_CONTEXT = 4096  # tokens in the KV cache while decoding
PROMPT_TOKENS = 2048  # prefill: one chunk of this many tokens (mlx-lm's prefill step, and its peer figure)
FEW_TOKENS = 8  # a few-token decode (a tool result, a draft) for the per-kernel table
ONE_TOKEN_EXPERT_DISPATCHES = 2  # moe_gate_up_swiglu and moe_down_accumulate
DENSE_BYTES = {"bf16": 2.0, "8-bit": 8.5 / 8}  # per dense weight: bfloat16, or MLX 8-bit with a scale and bias per 64
MODELS = {"20b": PUBLISHED["openai/gpt-oss-20b"], "120b": PUBLISHED["openai/gpt-oss-120b"]}
# The largest unified memory each chip is sold with: the 120b (about 65 GB) needs a large Max.
MAX_MEMORY_GB = {"M1": 16, "M2 Pro": 32, "M3 Max": 128, "M4 Max": 128}
MODEL_MEMORY_GB = {"20b": 14, "120b": 66}  # weights with bf16 dense layers, plus a small cache

# Reported by others, beside the projections (mlx-and-performance.md §3.1): (what, chip, figure).
PEERS = (
    ("mlx-lm, 20b (4-bit dense), prefill of 2,048 tokens", "M4 Max", "1,589 tok/s"),
    ("llama.cpp, 20b (GGUF), prefill of a 14,745-token prompt", "M1 Pro", "405 tok/s"),
    ("llama.cpp, 20b (GGUF), decode at that 14.7k context", "M1 Pro", "37 tok/s"),
)


def _expert_shape(config: ModelConfig) -> moe_cost.ExpertShape:
    return moe_cost.ExpertShape(experts=config.num_local_experts, top_k=config.num_experts_per_tok,
                                hidden=config.hidden_size, intermediate=config.intermediate_size)


def dense_weights_per_layer(config: ModelConfig) -> int:
    """q, k, v and o projections and the router: the weights every token reads in each layer."""
    q = config.num_attention_heads * config.head_dim
    kv = 2 * config.num_key_value_heads * config.head_dim
    return config.hidden_size * (q + kv) + q * config.hidden_size + config.hidden_size * config.num_local_experts


def dense_weights(config: ModelConfig) -> int:
    """Every layer's dense weights and the unembedding (the embedding reads one row a token)."""
    return config.num_hidden_layers * dense_weights_per_layer(config) + config.vocab_size * config.hidden_size


def kv_bytes_per_key(config: ModelConfig) -> int:
    """K and V of one position for all KV heads, bfloat16."""
    return 2 * config.num_key_value_heads * config.head_dim * 2


def attention_flops(config: ModelConfig, keys: float) -> float:
    """q·k and p·v for every query head against `keys` keys: 4 · D FLOPs a head and key."""
    return 4 * config.head_dim * config.num_attention_heads * keys


def _layers(config: ModelConfig, kind: str) -> int:
    return sum(1 for layer in config.layer_types if layer == kind)


def prefill_keys(config: ModelConfig, tokens: int, window: int | None) -> float:
    """Keys attention_prefill visits per query: its threadgroup of 32 / G queries walks 32-key
    tiles from its first query's first visible key to its last query (causal, windowed)."""
    group = config.num_attention_heads // config.num_key_value_heads
    queries = 32 // group
    total = 0
    for first in range(0, tokens, queries):
        last = min(first + queries, tokens) - 1
        start = 0 if window is None else max(0, first - window + 1)
        total += math.ceil((last + 1 - start) / 32) * 32 * (last + 1 - first)
    return total / tokens


def decode_seconds(config: ModelConfig, gpu: moe_cost.AppleGPU, dense: str, efficiency: float) -> float:
    """One decoded token: dense weights, its experts' rows (and their two dispatches a layer, at
    moe_cost's cost of a dispatch) and the KV cache at DECODE_CONTEXT, at `efficiency` of peak."""
    shape = _expert_shape(config)
    layers = config.num_hidden_layers
    window = config.sliding_window
    kv = kv_bytes_per_key(config) * (_layers(config, "full_attention") * DECODE_CONTEXT +
                                     _layers(config, "sliding_attention") * min(window, DECODE_CONTEXT))
    weights = dense_weights(config) * DENSE_BYTES[dense] + layers * shape.top_k * shape.expert_bytes
    dispatches = layers * ONE_TOKEN_EXPERT_DISPATCHES * moe_cost.DISPATCH_SECONDS
    return (weights + kv) / (gpu.bandwidth * efficiency) + dispatches


def prefill_seconds(config: ModelConfig, gpu: moe_cost.AppleGPU, tokens: int = PROMPT_TOKENS) -> float:
    """One prompt chunk: moe_cost's grouped experts per layer, the dense matmuls and attention on
    the matrix units at moe_cost.MMA_EFFICIENCY, weights read once for the chunk."""
    shape = _expert_shape(config)
    matrix_rate = gpu.flops * moe_cost.MMA_EFFICIENCY
    dense = 2 * config.num_hidden_layers * dense_weights_per_layer(config) * tokens
    attention = tokens * (
        _layers(config, "full_attention") * attention_flops(config, prefill_keys(config, tokens, None)) +
        _layers(config, "sliding_attention") *
        attention_flops(config, prefill_keys(config, tokens, config.sliding_window)))
    compute = (dense + attention) / matrix_rate
    memory = dense_weights(config) * DENSE_BYTES["bf16"] / (gpu.bandwidth * moe_cost.BANDWIDTH_EFFICIENCY)
    return max(compute, memory) + config.num_hidden_layers * moe_cost.grouped_seconds(shape, gpu, tokens)


@dataclass(frozen=True)
class KernelRow:
    """One kernel per token per layer at the 20b and 120b shapes, and its occupancy."""

    name: str
    when: str
    bytes_20b: float
    bytes_120b: float
    flops: float
    threads: int
    threadgroup_bytes: int

    @property
    def threadgroups_per_core(self) -> int:
        by_threads = THREADS_PER_CORE // self.threads
        if self.threadgroup_bytes == 0:
            return by_threads
        return min(by_threads, THREADGROUP_MEMORY_PER_CORE // self.threadgroup_bytes)


def _distinct_experts(config: ModelConfig, tokens: int) -> float:
    """Expected experts chosen by `tokens` tokens under uniform top-k routing."""
    experts, top_k = config.num_local_experts, config.num_experts_per_tok
    return experts * (1 - (1 - top_k / experts) ** tokens)


def _grouped_tiles(config: ModelConfig, tokens: int) -> float:
    experts, top_k = config.num_local_experts, config.num_experts_per_tok
    return experts * moe_cost.expected_blocks(tokens, top_k / experts, moe_cost.TOKENS_PER_PASS)


def kernel_rows() -> tuple[KernelRow, ...]:
    small, large = MODELS["20b"], MODELS["120b"]
    hidden, columns = small.hidden_size, small.intermediate_size
    gate_up = 2 * columns * (hidden // 2 + hidden // 32)  # one expert's MXFP4 gate/up rows
    down = hidden * (columns // 2 + columns // 32)
    top_k = small.num_experts_per_tok
    group = small.num_attention_heads // small.num_key_value_heads
    per_key = kv_bytes_per_key(small)
    q_bytes = small.num_attention_heads * small.head_dim * 2

    def per_token(weights: int, chosen) -> tuple[float, float]:
        return weights * chosen(small), weights * chosen(large)

    one = lambda config: top_k  # noqa: E731
    few = lambda config: _distinct_experts(config, FEW_TOKENS) / FEW_TOKENS  # noqa: E731
    grouped = lambda config: _grouped_tiles(config, PROMPT_TOKENS) / PROMPT_TOKENS  # noqa: E731
    full_keys = DECODE_CONTEXT
    prefill_full = prefill_keys(small, PROMPT_TOKENS, None)
    prefill_sliding = prefill_keys(small, PROMPT_TOKENS, small.sliding_window)
    queries_per_threadgroup = 32 // group
    # moe_grouped.h: inputs [32][40] of StageT (bfloat16 here), weights [64][40] half, 64 scales.
    grouped_threadgroup = 32 * 40 * 2 + 64 * 40 * 2 + 64 * 4
    return (
        KernelRow("moe_gate_up_swiglu", "1 token", *per_token(gate_up, one),
                  2 * top_k * 2 * columns * hidden, 256, 4096),
        KernelRow("moe_down_accumulate", "1 token", *per_token(down, one), 2 * top_k * hidden * columns, 256, 4096),
        KernelRow("moe_few_tokens_gate_up_swiglu", f"{FEW_TOKENS} tokens", *per_token(gate_up, few),
                  2 * top_k * 2 * columns * hidden, 256, 16384),
        KernelRow("moe_few_tokens_down", f"{FEW_TOKENS} tokens", *per_token(down, few),
                  2 * top_k * hidden * columns, 256, 16384),
        KernelRow("moe_grouped_gate_up_swiglu", f"{PROMPT_TOKENS} tokens", *per_token(gate_up, grouped),
                  2 * top_k * 2 * columns * hidden, 128, grouped_threadgroup),
        KernelRow("moe_grouped_down", f"{PROMPT_TOKENS} tokens", *per_token(down, grouped),
                  2 * top_k * hidden * columns, 128, grouped_threadgroup),
        KernelRow("attention_decode, full layer", f"context {DECODE_CONTEXT}", q_bytes + per_key * full_keys,
                  q_bytes + per_key * full_keys, attention_flops(small, full_keys), 128, 4 * 4 * group * 66),
        KernelRow("attention_decode, sliding layer", "window 128", q_bytes + per_key * small.sliding_window,
                  q_bytes + per_key * small.sliding_window, attention_flops(small, small.sliding_window), 128,
                  4 * 4 * group * 66),
        KernelRow("attention_prefill, full layer", f"{PROMPT_TOKENS} tokens",
                  per_key * prefill_full / queries_per_threadgroup, per_key * prefill_full / queries_per_threadgroup,
                  attention_flops(small, prefill_full), 128, 2 * 32 * (small.head_dim + 8) * 2),
        KernelRow("attention_prefill, sliding layer", f"{PROMPT_TOKENS} tokens",
                  per_key * prefill_sliding / queries_per_threadgroup,
                  per_key * prefill_sliding / queries_per_threadgroup,
                  attention_flops(small, prefill_sliding), 128, 2 * 32 * (small.head_dim + 8) * 2),
    )


def _size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def _chip(gpu: moe_cost.AppleGPU) -> str:
    return gpu.name.split(" (")[0]


def render() -> str:
    """The README's tables, as markdown."""
    lines = [
        "GPUs (moe_cost.GPUS): bandwidth from Apple's specifications; cores and clocks from",
        "philipturner/metal-benchmarks for M1 and M2, third-party tables for M3 and M4 (unverified).",
        "FP32 rate = cores × 128 ALUs × 2 FLOP × clock; FP16 and the 8×8 SIMD-group MMAs at the same",
        "rate (metal-benchmarks: GOPS16 = GOPS32 on M1 and M2; assumed for M3 and M4).",
        "",
        "| GPU | bandwidth | cores | clock | FP32 = FP16 |",
        "|---|---|---|---|---|",
    ]
    for gpu in moe_cost.GPUS:
        lines.append(f"| {gpu.name} | {gpu.bandwidth / 1e9:.4g} GB/s | {gpu.cores} | {gpu.clock_hz / 1e9:.3f} GHz "
                     f"| {gpu.flops / 1e12:.2f} TFLOPS |")
    lines += [
        "",
        f"Per kernel, per token and per layer (bytes read from device memory; experts under uniform "
        f"routing). Occupancy: threadgroups per core = min({THREADS_PER_CORE} threads ÷ threads per "
        f"threadgroup, {THREADGROUP_MEMORY_PER_CORE // 1024} KiB ÷ threadgroup memory); registers not modelled.",
        "",
        "| kernel | at | bytes, 20b | bytes, 120b | FLOPs | threads | threadgroup memory | threadgroups per core |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in kernel_rows():
        lines.append(f"| {row.name} | {row.when} | {_size(row.bytes_20b)} | {_size(row.bytes_120b)} "
                     f"| {row.flops / 1e6:.3g} M | {row.threads} | {row.threadgroup_bytes / 1024:.3g} KiB "
                     f"| {row.threadgroups_per_core} |")
    for model, config in MODELS.items():
        thresholds = sorted({moe_cost.grouped_min_tokens(_expert_shape(config), gpu) for gpu in moe_cost.GPUS})
        lines.append("")
        lines.append(f"The {model}'s experts run grouped from {' or '.join(map(str, thresholds))} tokens on "
                     f"(moe_cost.grouped_min_tokens on these GPUs), on moe_few_tokens from 2 tokens up to that.")
    efficiency = moe_cost.BANDWIDTH_EFFICIENCY
    lines += [
        "",
        f"PROJECTED tokens per second. Decode: (dense weights + active experts + KV cache at "
        f"{DECODE_CONTEXT} tokens) ÷ (bandwidth × {efficiency:.0%}), in brackets the roofline at 100 %. "
        f"Prefill of {PROMPT_TOKENS} tokens: moe_cost's grouped experts per layer plus dense matmuls and "
        f"attention on the matrix units at {moe_cost.MMA_EFFICIENCY:.0%} of the FP16 rate.",
        "",
        "| GPU | 20b prefill | 20b decode, bf16 dense | 20b decode, 8-bit dense | 120b prefill "
        "| 120b decode, bf16 dense | 120b decode, 8-bit dense |",
        "|---|---|---|---|---|---|---|",
    ]
    for gpu in moe_cost.GPUS:
        cells = [gpu.name]
        for model, config in MODELS.items():
            if MODEL_MEMORY_GB[model] > MAX_MEMORY_GB[_chip(gpu)]:
                cells += [f"does not fit ({MAX_MEMORY_GB[_chip(gpu)]} GB max)"] + ["–"] * 2
                continue
            cells.append(f"{PROMPT_TOKENS / prefill_seconds(config, gpu):,.0f}")
            for dense in DENSE_BYTES:
                projected = 1 / decode_seconds(config, gpu, dense, efficiency)
                roofline = 1 / decode_seconds(config, gpu, dense, 1.0)
                cells.append(f"{projected:.0f} ({roofline:.0f})")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Reported by others (not measured here), beside these projections:", "",
              "| reported | chip | figure |", "|---|---|---|"]
    lines += [f"| {what} | {chip} | {figure} |" for what, chip, figure in PEERS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
