"""The MLX-op attention runs long prefill chunks in query blocks so its score matrix stays bounded
(MLX materializes every score off Metal); the blocks must not change a single output."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from kernel_inputs import normal

from gpt_oss_desktop.mlx_model.kernels import reference


def unblocked(q: mx.array, k: mx.array, v: mx.array, sinks: mx.array, window: int | None) -> mx.array:
    mask = reference.window_mask(q.shape[2], k.shape[2], window)
    return mx.fast.scaled_dot_product_attention(
        q, k, v, scale=q.shape[-1] ** -0.5, mask=mask, sinks=sinks.astype(q.dtype)
    )


# (query heads, KV heads, queries, keys, window): keys - queries are already cached.
CASES = {
    "full-prompt": (8, 2, 70, 70, None),
    "full-after-cache": (8, 2, 70, 300, None),
    "window-prompt": (8, 2, 70, 70, 16),
    "window-after-cache": (8, 2, 70, 85, 16),  # a sliding cache keeps window - 1 keys
    "window-wider-than-keys": (4, 4, 9, 9, 128),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("budget_scores", [1, 7 * 300, 10**9])  # one query a block, several, one block
def test_query_blocks_give_the_unblocked_result(monkeypatch: pytest.MonkeyPatch, case: str,
                                                budget_scores: int) -> None:
    heads, kv_heads, queries, keys, window = CASES[case]
    monkeypatch.setattr(reference, "_SCORE_BUDGET_BYTES", budget_scores * heads * reference._BYTES_PER_SCORE)
    rng = np.random.default_rng(len(case))
    q, k, v = (normal(rng, (1, h, n, 32), mx.float32) for h, n in ((heads, queries), (kv_heads, keys), (kv_heads, keys)))
    sinks = normal(rng, (heads,), mx.float32)
    ours = reference.attention(q, k, v, sinks, scale=32**-0.5, window=window)
    assert np.array_equal(np.array(ours), np.array(unblocked(q, k, v, sinks, window)))


def test_long_context_chunk_keeps_scores_within_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 256-query chunk over 4096 keys with 16 heads: unblocked, its scores take ~100 MiB."""
    budget = 16 * 1024**2
    monkeypatch.setattr(reference, "_SCORE_BUDGET_BYTES", budget)
    rng = np.random.default_rng(0)
    q = normal(rng, (1, 16, 256, 64), mx.bfloat16)
    k, v = (normal(rng, (1, 4, 4096, 64), mx.bfloat16) for _ in range(2))
    sinks = normal(rng, (16,), mx.bfloat16)
    mx.eval(q, k, v, sinks)
    before = mx.get_active_memory()
    mx.reset_peak_memory()
    mx.eval(reference.attention(q, k, v, sinks, scale=0.125, window=None))
    assert mx.get_peak_memory() - before < 2 * budget
