"""Random inputs in the checkpoint's layouts and the tolerances of the kernel tests."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import mlx.core as mx
import numpy as np

from gpt_oss_desktop.mlx_model.kernels.layout import ExpertWeights

# Largest allowed |kernel - reference|, as a fraction of the largest |reference| value. float32:
# the kernels and MLX sum in different orders (measured: at most 9.3e-7). bfloat16: the kernels
# compute in float and round to bfloat16 only what they write (outputs, SwiGLU activations),
# compared with the reference in float32 on the same bfloat16 inputs (one rounding is 2^-9 of a
# value; measured: at most 3.6e-3). float16 likewise, one rounding being 2^-11 of a value.
TOLERANCE = {mx.float32: 1e-5, mx.bfloat16: 1e-2, mx.float16: 1e-3}

FP4_RMS = math.sqrt(sum(v * v for v in (0, 0.5, 1, 1.5, 2, 3, 4, 6)) / 8)


def random_experts(
    rng: np.random.Generator, experts: int, hidden: int, intermediate: int, dtype: mx.Dtype, spread: float
) -> ExpertWeights:
    """Random MXFP4 experts in the checkpoint's layout: every nibble value, scales that give the
    first projection's outputs a standard deviation near `spread`."""

    def mxfp4(rows: int, columns: int, std: float) -> tuple[mx.array, mx.array]:
        blocks = rng.integers(0, 2**32, size=(experts, rows, columns // 8), dtype=np.uint32)
        centre = 127 + round(math.log2(std / (FP4_RMS * math.sqrt(columns))))
        scales = rng.integers(centre - 2, centre + 2, size=(experts, rows, columns // 32), dtype=np.uint8)
        return mx.array(blocks), mx.array(scales)

    def bias(*shape: int) -> mx.array:
        return mx.array(rng.standard_normal(shape).astype(np.float32)).astype(dtype)

    gate_up_blocks, gate_up_scales = mxfp4(2 * intermediate, hidden, spread)
    down_blocks, down_scales = mxfp4(hidden, intermediate, 1.0)
    return ExpertWeights(
        gate_up_blocks=gate_up_blocks, gate_up_scales=gate_up_scales, gate_up_bias=bias(experts, 2 * intermediate),
        down_blocks=down_blocks, down_scales=down_scales, down_bias=bias(experts, hidden),
    )


def normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: mx.Dtype, scale: float = 1.0) -> mx.array:
    return mx.array((scale * rng.standard_normal(shape)).astype(np.float32)).astype(dtype)


def as_float32(value: Any) -> Any:
    """The same values in float32 (ExpertWeights' biases too), for the reference."""
    if isinstance(value, ExpertWeights):
        return dataclasses.replace(value, gate_up_bias=value.gate_up_bias.astype(mx.float32),
                                   down_bias=value.down_bias.astype(mx.float32))
    return value.astype(mx.float32) if mx.issubdtype(value.dtype, mx.floating) else value


def assert_close(actual: mx.array, expected: mx.array, dtype: mx.Dtype) -> None:
    assert actual.shape == expected.shape and actual.dtype == dtype
    ours = np.array(actual.astype(mx.float32))
    reference = np.array(expected.astype(mx.float32))
    scale = np.abs(reference).max()
    error = np.abs(ours - reference).max()
    assert np.isfinite(ours).all()
    assert error <= TOLERANCE[dtype] * scale, f"max error {error:.3g} vs largest value {scale:.3g}"
