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


@pytest.mark.slow
def test_a_prompt_far_beyond_the_window_and_4k_prefills_as_one_forward(tiny_checkpoint: Path) -> None:
    """4,200 tokens (262 windows of 16, past 4k) in 512-token chunks, then decoded tokens: the
    positions, masks and caches agree with one forward pass over the whole sequence."""
    from gpt_oss_desktop.mlx_model.forward import ForwardPass
    from gpt_oss_desktop.mlx_model.prompt_cache import PromptCache

    model = load(tiny_checkpoint, dtype=mx.float32)
    tokens = np.random.default_rng(11).integers(0, 200_000, size=4203).tolist()
    full = model(mx.array(tokens)[None])[0]
    cache = PromptCache(model)
    forward = ForwardPass(model, cache, chunk_size=512)
    logits = [forward.prefill(tokens[:4200]).logits]
    logits += [forward.step(mx.array(token)) for token in tokens[4200:]]
    for offset, row in enumerate(logits):
        expected = full[4199 + offset]
        assert mx.abs(row - expected).max().item() <= 1e-4 * mx.abs(expected).max().item()
    assert all(layer.offset == 4203 for layer in cache.layers)
    windows = [layer for layer in cache.layers if isinstance(layer, WindowCache)]
    assert windows and all(layer.keys.shape[2] == layer.window - 1 for layer in windows)  # the window layers stay small
