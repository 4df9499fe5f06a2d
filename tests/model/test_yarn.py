"""YaRN frequencies exactly as the reference computes them (unrounded correction range)."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model.config import ModelConfig, YarnScaling, yarn_inverse_frequencies
from gpt_oss_desktop.mlx_model.model import YarnRoPE

torch = pytest.importorskip("torch")


def reference_yarn(head_dim: int, base: float, factor: float, context: int, alpha: float, beta: float):
    """gpt_oss/torch/model.py RotaryEmbedding._compute_concentration_and_inv_freq, verbatim math."""
    freq = base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    concentration = 0.1 * math.log(factor) + 1.0
    d_half = head_dim / 2
    low = d_half * math.log(context / (beta * 2 * math.pi)) / math.log(base)
    high = d_half * math.log(context / (alpha * 2 * math.pi)) / math.log(base)
    interpolation = 1.0 / (factor * freq)
    extrapolation = 1.0 / freq
    ramp = (torch.arange(d_half, dtype=torch.float64) - low) / (high - low)
    mask = 1 - ramp.clamp(0, 1)
    return (interpolation * (1 - mask) + extrapolation * mask).numpy(), concentration


def test_gpt_oss_inverse_frequencies_match_the_reference() -> None:
    ours, concentration = yarn_inverse_frequencies(ModelConfig())
    expected, expected_concentration = reference_yarn(64, 150000.0, 32.0, 4096, 1.0, 32.0)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=0)
    assert concentration == pytest.approx(1.3465735902799727, abs=1e-12)
    assert concentration == pytest.approx(expected_concentration, abs=1e-12)


def test_inverse_frequencies_match_transformers() -> None:
    from transformers import GptOssConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    inverse, attention_factor = ROPE_INIT_FUNCTIONS["yarn"](GptOssConfig(), "cpu")
    ours, concentration = yarn_inverse_frequencies(ModelConfig())
    np.testing.assert_allclose(ours, inverse.double().numpy(), rtol=1e-6)
    assert concentration == pytest.approx(attention_factor, rel=1e-6)


def test_rounding_the_range_as_mlx_lm_does_would_differ() -> None:
    """The unrounded range matters: truncating it moves ramp frequencies by far more than 1e-6."""
    exact, _ = yarn_inverse_frequencies(ModelConfig())
    rounded, _ = yarn_inverse_frequencies(ModelConfig(rope_scaling=YarnScaling(truncate=True)))
    assert np.max(np.abs(np.array(exact) / np.array(rounded) - 1)) > 0.1


def test_rope_rotates_half_split_pairs_with_concentration_on_cos_and_sin() -> None:
    config = ModelConfig(head_dim=16)
    rope = YarnRoPE(config)
    x = mx.random.normal((1, 2, 5, 16), key=mx.random.key(0))
    offset = 1000
    ours = np.array(rope(x, offset))

    inverse, concentration = yarn_inverse_frequencies(config)
    angles = (offset + np.arange(5))[:, None] * np.array(inverse)[None, :]
    cos, sin = np.cos(angles) * concentration, np.sin(angles) * concentration
    x1, x2 = np.split(np.array(x), 2, axis=-1)
    expected = np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("offset", [32_765, 131_067])
def test_rope_holds_to_the_trained_length(offset: int) -> None:
    """Past 32k up to the trained 131,072 positions the rotation follows the reference, which
    computes its angles as float32 position × float32 frequency (gpt_oss/torch/model.py): at
    131k those angles are themselves ~8e-3 from exact, and ours stay within 2e-3 of them."""
    config = ModelConfig(head_dim=64)
    x = mx.random.normal((1, 2, 5, 64), key=mx.random.key(1))
    ours = np.array(YarnRoPE(config)(x, offset))
    inverse, concentration = yarn_inverse_frequencies(config)
    positions = np.float32(offset) + np.arange(5, dtype=np.float32)
    angles = (positions[:, None] * np.array(inverse, dtype=np.float32)[None, :]).astype(np.float64)
    cos, sin = np.cos(angles) * concentration, np.sin(angles) * concentration
    x1, x2 = np.split(np.array(x), 2, axis=-1)
    expected = np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-3)
