"""Incremental decoding with the caches equals one full forward pass."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model import load
from gpt_oss_desktop.mlx_model.cache import FullCache, WindowCache


@pytest.mark.parametrize("chunks", [[1] * 40, [30, 1, 9], [7, 16, 1, 1, 15], [40]])
def test_chunked_and_token_by_token_match_full_forward(tiny_checkpoint: Path, chunks: list[int]) -> None:
    model = load(tiny_checkpoint, dtype=mx.float32)
    tokens = mx.array(np.random.default_rng(9).integers(0, 200_000, size=(1, sum(chunks))))
    full = model(tokens)
    cache = model.make_cache()
    pieces, start = [], 0
    for size in chunks:
        pieces.append(model(tokens[:, start : start + size], cache=cache))
        start += size
    incremental = mx.concatenate(pieces, axis=1)
    assert mx.abs(incremental - full).max().item() <= 1e-4 * mx.abs(full).max().item()


def test_cache_kinds_follow_the_layer_types(tiny_checkpoint: Path) -> None:
    cache = load(tiny_checkpoint).make_cache()
    assert [type(c) for c in cache] == [WindowCache, FullCache, WindowCache, FullCache]


def test_window_cache_keeps_only_what_a_new_query_can_see() -> None:
    cache = WindowCache(window=4)
    keys = mx.arange(10, dtype=mx.float32).reshape(1, 1, 10, 1)
    seen, _ = cache.update(keys, keys)
    assert seen.shape[2] == 10
    assert cache.keys[0, 0, :, 0].tolist() == [7.0, 8.0, 9.0]
    step = mx.array([[[[10.0]]]])
    seen, _ = cache.update(step, step)
    assert seen[0, 0, :, 0].tolist() == [7.0, 8.0, 9.0, 10.0]
    assert cache.offset == 11


def test_snapshot_restore_and_trim_rewind_a_conversation(tiny_checkpoint: Path) -> None:
    """Rewinding to a turn boundary (full caches trimmed, window caches restored) and continuing
    gives the same logits as never having gone past it."""
    model = load(tiny_checkpoint, dtype=mx.float32)
    rng = np.random.default_rng(4)
    prompt = mx.array(rng.integers(0, 200_000, size=(1, 37)))
    detour = mx.array(rng.integers(0, 200_000, size=(1, 25)))
    follow = mx.array(rng.integers(0, 200_000, size=(1, 6)))

    cache = model.make_cache()
    model(prompt, cache=cache)
    snapshots = [c.snapshot() if isinstance(c, WindowCache) else None for c in cache]
    model(detour, cache=cache)
    for layer_cache, snapshot in zip(cache, snapshots):
        if snapshot is None:
            layer_cache.trim_to(prompt.shape[1])
        else:
            layer_cache.restore(snapshot)
    rewound = model(follow, cache=cache)

    fresh = model(mx.concatenate([prompt, follow], axis=1))[:, -follow.shape[1] :]
    assert mx.abs(rewound - fresh).max().item() <= 1e-4 * mx.abs(fresh).max().item()


def test_full_cache_refuses_to_trim_beyond_its_length() -> None:
    cache = FullCache()
    cache.update(mx.zeros((1, 1, 3, 2)), mx.zeros((1, 1, 3, 2)))
    with pytest.raises(ValueError, match="cannot trim"):
        cache.trim_to(5)
