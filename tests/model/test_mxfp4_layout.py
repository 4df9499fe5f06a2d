"""The Hub's MXFP4 bytes are exactly MLX's mxfp4 layout after a uint32 view: no re-quantizing."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

FP4_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def reference_dequantize(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """gpt_oss/torch/weights.py: low nibble first, value · 2^(scale − 127)."""
    low, high = FP4_VALUES[blocks & 0x0F], FP4_VALUES[blocks >> 4]
    values = np.stack([low, high], axis=-1).reshape(*blocks.shape[:-1], 32)
    values = values * np.exp2(scales.astype(np.float32) - 127)[..., None]
    return values.reshape(*blocks.shape[:-2], -1)


def test_mlx_dequantizes_hub_blocks_bit_exactly() -> None:
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, size=(3, 10, 4, 16), dtype=np.uint8)
    scales = rng.integers(110, 140, size=(3, 10, 4), dtype=np.uint8)
    words = mx.array(blocks).view(mx.uint32).flatten(-2)
    ours = mx.dequantize(words, mx.array(scales), None, group_size=32, bits=4, mode="mxfp4", dtype=mx.float32)
    np.testing.assert_array_equal(np.array(ours), reference_dequantize(blocks, scales))
