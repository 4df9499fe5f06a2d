"""The expert kernels (decode GEMVs and prefill grouped GEMMs) through the emulator, against the
MLX-op twin (kernels.reference.moe) on random MXFP4 experts."""

from __future__ import annotations

import dataclasses

import mlx.core as mx
import numpy as np
import pytest
from kernel_inputs import as_float32, assert_close, normal, random_experts

from gpt_oss_desktop.mlx_model.kernels import moe_cost, reference
from gpt_oss_desktop.mlx_model.kernels.layout import ExpertWeights
from gpt_oss_desktop.mlx_model.kernels.metal_kernels import MetalKernels

SWIGLU = dict(swiglu_limit=7.0, swiglu_alpha=1.702)  # gpt-oss's


def routed_tokens(
    rng: np.random.Generator, tokens: int, hidden: int, experts: int, top_k: int, dtype: mx.Dtype
) -> tuple[mx.array, mx.array, mx.array]:
    """Tokens, each with top_k distinct experts and softmax routing weights."""
    x = normal(rng, (tokens, hidden), dtype)
    indices = np.stack([rng.permutation(experts)[:top_k] for _ in range(tokens)]).astype(np.uint32)
    weights = mx.softmax(normal(rng, (tokens, top_k), mx.float32), axis=-1).astype(dtype)
    return x, mx.array(indices), weights


def check_against_reference(run, experts: int, hidden: int, intermediate: int, tokens: int, top_k: int,
                            dtype: mx.Dtype, seed: int) -> None:
    rng = np.random.default_rng(seed)
    weights_of_experts = random_experts(rng, experts, hidden, intermediate, dtype, spread=6.0)
    x, indices, weights = routed_tokens(rng, tokens, hidden, experts, top_k, dtype)
    ours = run(x, indices, weights, weights_of_experts, **SWIGLU)
    expected = reference.moe(
        as_float32(x), indices, as_float32(weights), as_float32(weights_of_experts), **SWIGLU
    )
    assert_close(ours, expected, dtype)


# (experts, hidden H, intermediate I, tokens, top_k, dtype). H and I are multiples of 32 (MXFP4);
# 1056 = 33 · 32 leaves a partial 1024-value chunk in the GEMVs and a partial 64-row GEMM tile.
DECODE_CASES = {
    "tiny-one-token": (8, 64, 64, 1, 4, mx.float32),
    "tiny-bf16": (8, 64, 64, 5, 4, mx.bfloat16),
    "odd-sizes-top2": (6, 96, 160, 7, 2, mx.float32),
    "top3-partial-chunk": (5, 1056, 96, 2, 3, mx.float32),
    "gpt-oss-sizes": (4, 2880, 2880, 1, 4, mx.bfloat16),
}


@pytest.mark.parametrize("case", sorted(DECODE_CASES))
def test_decode_gemvs_match_reference(emulated: MetalKernels, case: str) -> None:
    check_against_reference(emulated.moe_decode, *DECODE_CASES[case], seed=len(case))


# Token counts that fill 1, 2, 8 and 32 of the few-token kernels' per-expert register slots
# (MAX_TOKENS 2, 8, 32, 32) and chunks that end partway (1056 = 33 · 32 values).
FEW_TOKEN_CASES = {
    "2-tokens": (8, 64, 64, 2, 4, mx.float32),
    "5-tokens-bf16": (8, 64, 64, 5, 4, mx.bfloat16),
    "17-tokens-top2-odd-sizes": (6, 96, 160, 17, 2, mx.float32),
    "31-tokens-top3-partial-chunk": (5, 1056, 96, 31, 3, mx.float32),
    "31-tokens-bf16-many-experts": (32, 64, 96, 31, 4, mx.bfloat16),
}


@pytest.mark.parametrize("case", sorted(FEW_TOKEN_CASES))
def test_few_token_gemvs_match_reference(emulated: MetalKernels, case: str) -> None:
    check_against_reference(emulated.moe_few_tokens, *FEW_TOKEN_CASES[case], seed=len(case))


def test_few_token_gemvs_with_experts_of_zero_one_and_many_tokens(emulated: MetalKernels) -> None:
    """Expert 0 chosen by every token, expert 1 by one, 2 and 6 by none; 12 experts for 5
    tokens, so some of the grid's slots stay unused and must return without writing."""
    rng = np.random.default_rng(11)
    experts = random_experts(rng, 12, 96, 64, mx.float32, spread=6.0)
    x, _, weights = routed_tokens(rng, 5, 96, 12, 3, mx.float32)
    indices = mx.array([[0, 1, 3], [4, 0, 5], [0, 7, 8], [9, 10, 0], [11, 0, 3]], mx.uint32)
    counts = np.bincount(np.array(indices).ravel(), minlength=12)
    assert counts[0] == 5 and counts[1] == 1 and counts[2] == counts[6] == 0
    ours = emulated.moe_few_tokens(x, indices, weights, experts, **SWIGLU)
    assert_close(ours, reference.moe(x, indices, weights, experts, **SWIGLU), mx.float32)


def test_an_expert_with_more_pairs_than_its_registers_runs_in_passes(emulated: MetalKernels) -> None:
    """A token naming one expert twice (not what a router does, but valid input) gives an expert
    more pairs than there are tokens: 3 tokens (4 register slots) and 6 pairs of expert 2."""
    rng = np.random.default_rng(12)
    experts = random_experts(rng, 4, 64, 64, mx.float32, spread=6.0)
    x, _, weights = routed_tokens(rng, 3, 64, 4, 2, mx.float32)
    indices = mx.array([[2, 2], [2, 2], [2, 2]], mx.uint32)
    ours = emulated.moe_few_tokens(x, indices, weights, experts, **SWIGLU)
    assert_close(ours, reference.moe(x, indices, weights, experts, **SWIGLU), mx.float32)


@pytest.mark.slow
def test_few_token_gemvs_at_gpt_oss_sizes(emulated: MetalKernels) -> None:
    """H = I = 2880 (2I = 5760), 17 tokens on 4 experts (every expert has several tokens)."""
    check_against_reference(emulated.moe_few_tokens, 4, 2880, 2880, 17, 2, mx.bfloat16, seed=4)


GROUPED_CASES = {
    "tiny-300-tokens-many-tiles-per-expert": (8, 64, 64, 300, 4, mx.float32),
    "few-tokens-most-experts-unused": (16, 96, 64, 3, 4, mx.bfloat16),
    "partial-output-tile-top2": (6, 1056, 96, 40, 2, mx.float32),
    "one-token": (4, 64, 32, 1, 4, mx.float32),
}


@pytest.mark.parametrize("case", sorted(GROUPED_CASES))
def test_grouped_gemms_match_reference(emulated: MetalKernels, case: str) -> None:
    check_against_reference(emulated.moe_grouped, *GROUPED_CASES[case], seed=len(case))


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_grouped_gemms_with_experts_of_0_1_9_33_and_23_pairs(emulated: MetalKernels, dtype: mx.Dtype) -> None:
    """Expert 0 gets no pair, expert 1 one, expert 2 all 33 tokens (a full tile and a 1-pair
    tile), expert 3 nine (its second SIMD-group has one row), expert 4 23 (three SIMD-groups, the
    third partly empty): the SIMD-groups without pairs skip their MMAs, the others must not."""
    rng = np.random.default_rng(9)
    experts = random_experts(rng, 5, 64, 96, dtype, spread=6.0)
    indices = mx.array([[2, expert] for expert in [1] + [3] * 9 + [4] * 23], mx.uint32)
    x = normal(rng, (33, 64), dtype)
    weights = mx.softmax(normal(rng, (33, 2), mx.float32), axis=-1).astype(dtype)
    ours = emulated.moe_grouped(x, indices, weights, experts, **SWIGLU)
    expected = reference.moe(as_float32(x), indices, as_float32(weights), as_float32(experts), **SWIGLU)
    assert_close(ours, expected, dtype)


@pytest.mark.slow
def test_grouped_gemms_at_gpt_oss_sizes(emulated_once: MetalKernels) -> None:
    """H = I = 2880 (2I = 5760: 90 gate/up and 45 down tiles of 64 rows), 33 tokens, top 2 of 4
    experts: expert 0 gets no pair, expert 1 one (a tile of one SIMD-group row), expert 2 all 33
    (a full tile, then a 1-pair tile), expert 3 the other 32 (one full tile). One schedule: about
    15 s of CPU time; tiles with partly empty SIMD-groups are the small cases' business."""
    rng = np.random.default_rng(3)
    experts = random_experts(rng, 4, 2880, 2880, mx.bfloat16, spread=6.0)
    indices = mx.array([[2, 1]] + [[2, 3]] * 32, mx.uint32)
    x = normal(rng, (33, 2880), mx.bfloat16)
    weights = mx.softmax(normal(rng, (33, 2), mx.float32), axis=-1).astype(mx.bfloat16)
    ours = emulated_once.moe_grouped(x, indices, weights, experts, **SWIGLU)
    expected = reference.moe(as_float32(x), indices, as_float32(weights), as_float32(experts), **SWIGLU)
    assert_close(ours, expected, mx.bfloat16)


def test_clamp_is_exercised() -> None:
    """Guards the cases above: the first projection's outputs pass the SwiGLU limit often."""
    rng = np.random.default_rng(0)
    experts = random_experts(rng, 8, 64, 64, mx.float32, spread=6.0)
    x = normal(rng, (64, 64), mx.float32)
    gate_up = mx.dequantize(
        experts.gate_up_blocks[0], experts.gate_up_scales[0], None, group_size=32, bits=4, mode="mxfp4"
    )
    outputs = np.abs(np.array(x @ gate_up.T + experts.gate_up_bias[0]))
    assert 0.1 < (outputs > SWIGLU["swiglu_limit"]).mean() < 0.9


def experts_shaped_like(shape: moe_cost.ExpertShape) -> ExpertWeights:
    """Experts of a real model's shapes, as broadcast zeros (no memory): the dispatch reads
    only their shapes."""
    def zeros(*dims: int) -> mx.array:
        return mx.broadcast_to(mx.zeros((1,) * len(dims), mx.uint8), dims)
    e, h, i = shape.experts, shape.hidden, shape.intermediate
    return ExpertWeights(
        gate_up_blocks=zeros(e, 2 * i, h // 8), gate_up_scales=zeros(e, 2 * i, h // 32),
        gate_up_bias=zeros(e, 2 * i), down_blocks=zeros(e, h, i // 8), down_scales=zeros(e, h, i // 32),
        down_bias=zeros(e, h),
    )


@pytest.mark.parametrize("model", [moe_cost.GPT_OSS_20B, moe_cost.GPT_OSS_120B], ids=["20b", "120b"])
def test_moe_takes_gemvs_below_the_cost_models_threshold_and_gemms_from_it(
    monkeypatch: pytest.MonkeyPatch, model: moe_cost.ExpertShape
) -> None:
    kernels = MetalKernels(lambda **_: pytest.fail("no kernel should be built"))
    taken: list[str] = []
    for entry in ("moe_decode", "moe_few_tokens", "moe_grouped"):
        monkeypatch.setattr(kernels, entry, lambda x, *_, entry=entry, **__: taken.append(entry))
    threshold = moe_cost.grouped_min_tokens(model, kernels.gpu)
    experts = experts_shaped_like(model)
    for tokens in (1, 2, threshold - 1, threshold, 500):
        indices = mx.zeros((tokens, model.top_k), mx.uint32)
        kernels.moe(mx.zeros((tokens, model.hidden)), indices, mx.zeros((tokens, model.top_k)), experts,
                    **SWIGLU)
    assert taken == ["moe_decode", "moe_few_tokens", "moe_few_tokens", "moe_grouped", "moe_grouped"]


def test_the_cost_model_groups_later_when_experts_are_shared_less() -> None:
    """The grouped path pays once experts have several 8-row MMA blocks of pairs: with 128
    experts (120b) that takes more tokens than with 32 (20b), on every tabled GPU."""
    for gpu in moe_cost.GPUS:
        small, large = (moe_cost.grouped_min_tokens(m, gpu) for m in (moe_cost.GPT_OSS_20B, moe_cost.GPT_OSS_120B))
        assert 2 < small < large <= moe_cost.SEARCH_TOKENS, gpu.name


def test_the_cost_model_by_hand() -> None:
    """Its parts spot-checked: two tokens on the 20b read 7.5 experts' 13.24 MB on either path
    (memory-bound for the few-token kernel, compute-bound for the padded MMAs); the expected
    tiles of Binomial-routed pairs agree with sampling; at 256 tokens the grouped path is
    compute-bound (at least every pair's FMAs at the assumed MMA rate) and faster."""
    model, gpu = moe_cost.GPT_OSS_20B, moe_cost.REFERENCE_GPU
    assert model.expert_bytes == 5760 * 1530 + 2880 * 1530 + 2 * (5760 + 2880)
    rate = gpu.bandwidth * moe_cost.BANDWIDTH_EFFICIENCY
    two_tokens = (32 - 32 * (1 - 4 / 32) ** 2) * model.expert_bytes / rate
    few = moe_cost.few_tokens_seconds(model, gpu, 2) - moe_cost.FEW_TOKENS_DISPATCHES * moe_cost.DISPATCH_SECONDS
    assert few == pytest.approx(two_tokens, rel=0.02)
    assert moe_cost.grouped_seconds(model, gpu, 2) > moe_cost.few_tokens_seconds(model, gpu, 2)

    pairs = np.random.default_rng(0).binomial(256, 4 / 32, size=200_000)
    for rows in (8, 32):
        sampled = np.ceil(pairs / rows).mean()
        assert moe_cost.expected_blocks(256, 4 / 32, rows) == pytest.approx(sampled, rel=5e-3)

    grouped = moe_cost.grouped_seconds(model, gpu, 256)
    every_pair = 256 * 4 * model.weights_per_expert / (gpu.fma_per_second * moe_cost.MMA_EFFICIENCY)
    assert every_pair < grouped < moe_cost.few_tokens_seconds(model, gpu, 256)


def test_sizes_that_are_not_whole_mxfp4_groups_are_refused(emulated: MetalKernels) -> None:
    rng = np.random.default_rng(0)
    experts = random_experts(rng, 4, 64, 64, mx.float32, spread=1.0)
    x, indices, weights = routed_tokens(rng, 2, 48, 4, 2, mx.float32)
    with pytest.raises(ValueError, match="width 48"):
        emulated.moe_decode(x, indices, weights, experts, **SWIGLU)


MXFP4_SCALES = """
const uint s = thread_position_in_grid.x;
scales[s] = mxfp4_scale(uchar(s));
// A scale-0 group: 2^-127 times the word's dot product, which is normal for these inputs.
float4 x_low = float4(in_x[0], in_x[1], in_x[2], in_x[3]);
float4 x_high = float4(in_x[4], in_x[5], in_x[6], in_x[7]);
zero_group[s] = mxfp4_scale(uchar(0)) * mxfp4_word_dot(words[s], x_low, x_high);
// The former route through the float denormal 2^-127, read from memory so it is not folded.
through_denormal[s] = as_type<float>(denormal_bits[0]) * 16384.0f * 1.0f;
"""


def test_mxfp4_scales_are_exact_powers_of_two_without_a_denormal() -> None:
    """Every E8M0 byte gives 2^(s - 113) (overflowing to inf from 241), s = 0 included: the
    scale-0 group's products are exact, where the former 2^-127 · 2^14 route read as zero once
    denormals are flushed (the emulator flushes them, as Apple GPUs may)."""
    from gpt_oss_desktop.metal.emulator import MetalKernel
    from gpt_oss_desktop.mlx_model.kernels.metal_kernels import _read

    kernel = MetalKernel(name="mxfp4_scales", input_names=["in_x", "words", "denormal_bits"],
                         output_names=["scales", "zero_group", "through_denormal"],
                         source=MXFP4_SCALES, header=_read("mxfp4.h"))
    rng = np.random.default_rng(0)
    x = (100 * rng.standard_normal(8)).astype(np.float32)
    words = rng.integers(0, 2**32, 256, dtype=np.uint32)
    scales, zero_group, through_denormal = kernel(
        inputs=[x, words, np.array([0x00400000] * 8, np.uint32)], output_shapes=[(256,)] * 3,
        output_dtypes=[mx.float32] * 3, grid=(256, 1, 1), threadgroup=(256, 1, 1))
    exact = [2.0 ** (s - 113) if s < 241 else np.inf for s in range(256)]
    np.testing.assert_array_equal(np.array(scales), np.array(exact, np.float32))
    dequantized = np.array(mx.dequantize(mx.array(words.reshape(64, 4)), mx.zeros((64, 1), mx.uint8),
                                         None, group_size=32, bits=4, mode="mxfp4").astype(mx.float32))
    expected = (dequantized.reshape(256, 8).astype(np.float64) * x).sum(axis=1)
    # In units of 2^-127: float32 rounding of eight products of size ~600 (absolute 1e-4).
    np.testing.assert_allclose(np.array(zero_group) * 2.0**127, expected * 2.0**127, atol=1e-3)
    assert np.abs(expected).min() > 2.0**-126  # normal results: nothing flushed
    assert (np.array(through_denormal) == 0).all()


def test_experts_with_zero_scales_match_the_reference(emulated: MetalKernels) -> None:
    """All of one expert's scale bytes 0 (2^-127): its rows add almost nothing, as in MLX."""
    rng = np.random.default_rng(5)
    experts = random_experts(rng, 4, 64, 64, mx.float32, spread=6.0)
    zero_first = lambda scales: mx.concatenate([mx.zeros_like(scales[:1]), scales[1:]])  # noqa: E731
    experts = dataclasses.replace(experts, gate_up_scales=zero_first(experts.gate_up_scales),
                                  down_scales=zero_first(experts.down_scales))
    x, _, weights = routed_tokens(rng, 3, 64, 4, 2, mx.float32)
    indices = mx.array([[0, 1], [0, 2], [3, 0]], mx.uint32)
    ours = emulated.moe_decode(x, indices, weights, experts, **SWIGLU)
    assert_close(ours, reference.moe(x, indices, weights, experts, **SWIGLU), mx.float32)
