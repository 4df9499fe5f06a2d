"""The expert kernels (decode GEMVs and prefill grouped GEMMs) through the emulator, against the
MLX-op twin (kernels.reference.moe) on random MXFP4 experts."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from kernel_inputs import as_float32, assert_close, normal, random_experts

from mlx_model.kernels import reference
from mlx_model.kernels.metal_kernels import GROUPED_MOE_MIN_TOKENS, MetalKernels

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


GROUPED_CASES = {
    "tiny-300-tokens-many-tiles-per-expert": (8, 64, 64, 300, 4, mx.float32),
    "few-tokens-most-experts-unused": (16, 96, 64, 3, 4, mx.bfloat16),
    "partial-output-tile-top2": (6, 1056, 96, 40, 2, mx.float32),
    "one-token": (4, 64, 32, 1, 4, mx.float32),
}


@pytest.mark.parametrize("case", sorted(GROUPED_CASES))
def test_grouped_gemms_match_reference(emulated: MetalKernels, case: str) -> None:
    check_against_reference(emulated.moe_grouped, *GROUPED_CASES[case], seed=len(case))


def test_grouped_gemms_at_gpt_oss_sizes(emulated: MetalKernels) -> None:
    """H = I = 2880 (2I = 5760), with 2 experts so that it stays at about 20 s on two cores."""
    check_against_reference(emulated.moe_grouped, 2, 2880, 2880, 3, 2, mx.bfloat16, seed=3)


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


def test_moe_takes_gemvs_for_decode_and_gemms_for_prefill(monkeypatch: pytest.MonkeyPatch) -> None:
    kernels = MetalKernels(lambda **_: pytest.fail("no kernel should be built"))
    taken: list[str] = []
    monkeypatch.setattr(kernels, "moe_decode", lambda x, *_, **__: taken.append("decode"))
    monkeypatch.setattr(kernels, "moe_grouped", lambda x, *_, **__: taken.append("grouped"))
    for tokens in (1, GROUPED_MOE_MIN_TOKENS - 1, GROUPED_MOE_MIN_TOKENS, 500):
        indices = mx.zeros((tokens, 4), mx.uint32)
        kernels.moe(mx.zeros((tokens, 64)), indices, mx.zeros((tokens, 4)), None, **SWIGLU)
    assert taken == ["decode", "decode", "grouped", "grouped"]


def test_sizes_that_are_not_whole_mxfp4_groups_are_refused(emulated: MetalKernels) -> None:
    rng = np.random.default_rng(0)
    experts = random_experts(rng, 4, 64, 64, mx.float32, spread=1.0)
    x, indices, weights = routed_tokens(rng, 2, 48, 4, 2, mx.float32)
    with pytest.raises(ValueError, match="width 48"):
        emulated.moe_decode(x, indices, weights, experts, **SWIGLU)
