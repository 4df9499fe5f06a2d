"""When the grouped expert GEMMs beat the few-token GEMVs: a roofline cost model of both paths.

This is a PROJECTION for Apple GPUs, not a measurement (no Mac runs here). From 2 tokens up to
the threshold the experts run on moe_few_tokens (each chosen expert's rows read once for all its
tokens, scalar FMAs), from it on as moe_grouped (tiles of 32 pairs on 8x8 SIMD-group matrices).
Per layer and number of tokens T, each path costs max(memory time, compute time) plus its
dispatches, where compute time is the larger of its ALU time and its threadgroup-memory time:

- memory, both paths: each expert's rows once per 32 of its pairs (a grouped tile, or a pass of
  the few-token kernel, whose registers hold 32 tokens), plus the [P, I] activations and [P, H]
  float partial outputs written and read again.
- few tokens: 1 FMA per weight and pair, no padding, plus the decoding of each weight once per
  pass; every 8 FMAs read two 4-vectors of the staged token rows (16 bytes of bfloat16) from
  threadgroup memory, which is what bounds it.
- grouped: the MMAs compute 8 rows for every SIMD-group that has a pair (pairs padded to 8 per
  tile), at an assumed share of the ALU peak; each tile decodes and stages its expert's weights
  once; an 8x8x8 MMA (512 FMAs) reads about 144 bytes of fragments from threadgroup memory.

Routing is assumed uniform: each expert gets Binomial(T, top_k / E) pairs, and the model takes
the expectation of tiles and 8-row blocks over that distribution. The threshold of a model is
the smallest T from which the grouped path is projected no slower for every larger T (up to
SEARCH_TOKENS).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

# Assumptions, stated (see metal/README.md, "When the grouped path pays").
BANDWIDTH_EFFICIENCY = 0.6  # share of peak bandwidth either path reaches (50-70 % reported)
MMA_EFFICIENCY = 0.6  # share of the FP32 ALU peak the 8x8 MMA loop reaches
SCALAR_EFFICIENCY = 0.5  # share of that peak for scalar FMAs, weight decoding and staging
THREADGROUP_BYTES_PER_CLOCK = 64  # threadgroup-memory bandwidth of one GPU core [unverified]
DISPATCH_SECONDS = 5e-6  # one kernel dispatch in a command buffer
FP32_ALUS_PER_CORE = 128
DECODE_SLOTS_PER_WEIGHT = 2.25  # SWAR decode of a word (~10 integer ops) and 8 conversions
FEW_TOKENS_SLOTS_PER_FMA = 1.25  # the FMA, and the scale and sum per 4 of them
FEW_TOKENS_THREADGROUP_BYTES_PER_FMA = 2.0  # two bfloat16 4-vectors per 8 FMAs
GROUPED_STAGING_SLOTS_PER_WEIGHT = 4  # decode, half store, fragment load and convert
GROUPED_THREADGROUP_BYTES_PER_FMA = 144 / 512  # fragments read per 8x8x8 MMA
# MLX ops around the kernels: casts, argsorts, counts (zeros, scatter-add), prefix sums and
# concatenates, the active-expert list (few tokens only), the final sum and cast.
FEW_TOKENS_DISPATCHES = 18
GROUPED_DISPATCHES = 16
TOKENS_PER_PASS = 32  # a grouped tile's pairs, and the few-token kernel's registers
MMA_ROWS = 8  # rows of one SIMD-group's 8x8 fragments
SEARCH_TOKENS = 256


@dataclass(frozen=True)
class AppleGPU:
    """Apple's bandwidth figure and the GPU's FP32 rate: cores × 128 ALUs × 2 FLOP × clock. The
    SIMD-group matrix MMAs run on those ALUs (FP16 at the same rate) on M1-M4."""

    name: str
    bandwidth: float  # bytes per second
    cores: int
    clock_hz: float

    @property
    def fma_per_second(self) -> float:
        return self.cores * FP32_ALUS_PER_CORE * self.clock_hz

    @property
    def flops(self) -> float:
        return 2 * self.fma_per_second

    @property
    def threadgroup_bandwidth(self) -> float:
        return self.cores * THREADGROUP_BYTES_PER_CLOCK * self.clock_hz


# Bandwidths: Apple's specifications. Clocks: third-party tables (hmc-tech.com), unverified.
GPUS: tuple[AppleGPU, ...] = (
    AppleGPU("M1 (8-core GPU)", 68.25e9, 8, 1.278e9),
    AppleGPU("M2 Pro (19-core GPU)", 200e9, 19, 1.398e9),
    AppleGPU("M3 Max (40-core GPU)", 400e9, 40, 1.398e9),
    AppleGPU("M4 Max (40-core GPU)", 546e9, 40, 1.678e9),
)
REFERENCE_GPU = GPUS[1]  # the middle of the range, and the GPU off a Mac (the emulator)


def gpu_named(device_name: str) -> AppleGPU:
    """The tabled GPU whose chip name (e.g. "M3 Max") `device_name` contains, else the
    reference GPU."""
    for gpu in GPUS:
        if gpu.name.split(" (")[0] in device_name:
            return gpu
    return REFERENCE_GPU


@dataclass(frozen=True)
class ExpertShape:
    """What the two paths' costs depend on: experts E, experts per token, hidden and
    intermediate sizes."""

    experts: int
    top_k: int
    hidden: int
    intermediate: int

    @property
    def expert_bytes(self) -> int:
        """One expert's MXFP4 rows (4.25 bits a weight) and bfloat16 biases."""
        def rows(count: int, inputs: int) -> int:
            return count * (inputs // 2 + inputs // 32)
        weights = rows(2 * self.intermediate, self.hidden) + rows(self.hidden, self.intermediate)
        return weights + 2 * (2 * self.intermediate + self.hidden)

    @property
    def weights_per_expert(self) -> int:
        return 3 * self.intermediate * self.hidden

    @property
    def pair_bytes(self) -> int:
        """Memory traffic of one pair between the grouped kernels: its activation row written and
        read in bfloat16, its float output row written and read again by the sum."""
        return 2 * 2 * self.intermediate + 2 * 4 * self.hidden


GPT_OSS_20B = ExpertShape(experts=32, top_k=4, hidden=2880, intermediate=2880)
GPT_OSS_120B = ExpertShape(experts=128, top_k=4, hidden=2880, intermediate=2880)


def expected_blocks(tokens: int, probability: float, rows: int) -> float:
    """E[ceil(n / rows)] for n ~ Binomial(tokens, probability)."""
    if probability >= 1.0:
        return math.ceil(tokens / rows)
    pmf = (1.0 - probability) ** tokens
    odds = probability / (1.0 - probability)
    expected = 0.0
    for n in range(1, tokens + 1):
        pmf *= (tokens - n + 1) / n * odds
        expected += pmf * math.ceil(n / rows)
    return expected


def _seconds(shape: ExpertShape, gpu: AppleGPU, tokens: int, passes: float, alu_slots: float,
             threadgroup_bytes: float, dispatches: int) -> float:
    memory = passes * shape.expert_bytes + tokens * shape.top_k * shape.pair_bytes
    compute = max(alu_slots / gpu.fma_per_second, threadgroup_bytes / gpu.threadgroup_bandwidth)
    return max(memory / (gpu.bandwidth * BANDWIDTH_EFFICIENCY), compute) + dispatches * DISPATCH_SECONDS


def _passes(shape: ExpertShape, tokens: int, rows: int) -> float:
    """Expected Σ over experts of ceil(pairs / rows)."""
    return shape.experts * expected_blocks(tokens, min(1.0, shape.top_k / shape.experts), rows)


def few_tokens_seconds(shape: ExpertShape, gpu: AppleGPU, tokens: int) -> float:
    """One layer's experts for `tokens` tokens on moe_few_tokens."""
    passes = _passes(shape, tokens, TOKENS_PER_PASS)
    fmas = tokens * shape.top_k * shape.weights_per_expert
    slots = (DECODE_SLOTS_PER_WEIGHT * passes * shape.weights_per_expert
             + FEW_TOKENS_SLOTS_PER_FMA * fmas) / SCALAR_EFFICIENCY
    return _seconds(shape, gpu, tokens, passes, slots, FEW_TOKENS_THREADGROUP_BYTES_PER_FMA * fmas,
                    FEW_TOKENS_DISPATCHES)


def grouped_seconds(shape: ExpertShape, gpu: AppleGPU, tokens: int) -> float:
    """One layer's experts for `tokens` tokens on moe_grouped."""
    tiles = _passes(shape, tokens, TOKENS_PER_PASS)
    fmas = MMA_ROWS * _passes(shape, tokens, MMA_ROWS) * shape.weights_per_expert
    staged = tiles * shape.weights_per_expert
    slots = fmas / MMA_EFFICIENCY + GROUPED_STAGING_SLOTS_PER_WEIGHT * staged / SCALAR_EFFICIENCY
    threadgroup_bytes = GROUPED_THREADGROUP_BYTES_PER_FMA * fmas + 2 * staged
    return _seconds(shape, gpu, tokens, tiles, slots, threadgroup_bytes, GROUPED_DISPATCHES)


@functools.cache
def grouped_min_tokens(shape: ExpertShape, gpu: AppleGPU = REFERENCE_GPU) -> int:
    """The smallest token count (2 or more) from which the grouped path is projected no slower
    than the few-token path for every count up to SEARCH_TOKENS (SEARCH_TOKENS + 1 if never)."""
    threshold = SEARCH_TOKENS + 1
    for tokens in range(SEARCH_TOKENS, 1, -1):
        if grouped_seconds(shape, gpu, tokens) > few_tokens_seconds(shape, gpu, tokens):
            break
        threshold = tokens
    return threshold
