"""Sampling filters behave as documented."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model.sampling import Sampler, SamplingSettings

LOGITS = mx.array([1.0, 3.0, 2.9, -1.0, 0.5])


def draws(settings: SamplingSettings, n: int = 300) -> set[int]:
    sampler = Sampler(settings)
    return {sampler(LOGITS).item() for _ in range(n)}


def test_temperature_zero_is_greedy() -> None:
    assert draws(SamplingSettings(temperature=0), 5) == {1}


def test_top_k_keeps_only_the_k_most_likely() -> None:
    assert draws(SamplingSettings(top_k=2, seed=0)) == {1, 2}
    assert draws(SamplingSettings(top_k=1, seed=0), 20) == {1}


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    probabilities = np.exp(np.array(LOGITS)) / np.exp(np.array(LOGITS)).sum()
    assert probabilities[1] + probabilities[2] > 0.8 > probabilities[1]
    assert draws(SamplingSettings(top_p=0.8, seed=1)) == {1, 2}
    assert draws(SamplingSettings(top_p=0.01, seed=1), 20) == {1}


def test_min_p_drops_tokens_far_below_the_best() -> None:
    assert draws(SamplingSettings(min_p=0.5, seed=2)) == {1, 2}


def test_plain_sampling_reaches_every_token() -> None:
    assert draws(SamplingSettings(seed=3), 2000) == {0, 1, 2, 3, 4}


def test_same_seed_same_sequence() -> None:
    first, second = Sampler(SamplingSettings(seed=5)), Sampler(SamplingSettings(seed=5))
    assert [first(LOGITS).item() for _ in range(30)] == [second(LOGITS).item() for _ in range(30)]


@pytest.mark.parametrize(
    "bad", [dict(temperature=-1), dict(top_p=0), dict(top_k=-1), dict(min_p=1.0), dict(max_new_tokens=0)]
)
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        SamplingSettings(**bad)
