"""The attention kernels (decode with splits, prefill with skipped tiles) through the emulator,
against the MLX-op twin (kernels.reference.attention: MLX's SDPA with sinks and a window mask)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from kernel_inputs import as_float32, assert_close, normal

from gpt_oss_desktop.mlx_model.cache import FullCache
from gpt_oss_desktop.mlx_model.kernels import reference
from gpt_oss_desktop.mlx_model.kernels.layout import QuantizedKV, quantize_kv
from gpt_oss_desktop.mlx_model.kernels.metal_kernels import DECODE_ATTENTION_MAX_QUERIES, MetalKernels


def attention_inputs(rng: np.random.Generator, batch: int, heads: int, kv_heads: int, queries: int, keys: int,
                     dims: int, sink_scale: float, dtype: mx.Dtype):
    q = normal(rng, (batch, heads, queries, dims), dtype)
    k = normal(rng, (batch, kv_heads, keys, dims), dtype)
    v = normal(rng, (batch, kv_heads, keys, dims), dtype)
    return q, k, v, normal(rng, (heads,), dtype, sink_scale)


def expected(q: mx.array, k, v, sinks: mx.array, window: int | None) -> mx.array:
    """The twin in float32 (8-bit K and V: dequantised to float32)."""
    q, sinks = (as_float32(mx.array(a)) for a in (q, sinks))
    if not isinstance(k, QuantizedKV):
        k, v = (as_float32(mx.array(a)) for a in (k, v))
    return reference.attention(q, k, v, sinks, scale=q.shape[-1] ** -0.5, window=window)


# (batch, query heads, KV heads, queries, keys, head size, window or None, sink scale,
#  keys per split, dtype). Keys end at the last query; keys - queries are cached.
DECODE_CASES = {
    "tiny-below-window": (1, 8, 2, 1, 10, 16, 16, 1.0, 256, mx.float32),
    "tiny-above-window": (1, 8, 2, 1, 40, 16, 16, 1.0, 256, mx.float32),
    "full-split-5-ways-batch-2": (2, 8, 2, 1, 300, 16, None, 1.0, 64, mx.float32),
    "uneven-splits-3-queries-no-gqa-large-sinks": (1, 4, 4, 3, 100, 32, None, 20.0, 16, mx.bfloat16),
    "8-queries-window-gqa16": (1, 16, 1, 8, 50, 64, 16, 1.0, 256, mx.float32),
    "sinks-dominate": (1, 6, 3, 1, 33, 64, None, 40.0, 256, mx.float32),
    "gpt-oss-sliding-layer": (1, 64, 8, 1, 200, 64, 128, 1.0, 256, mx.bfloat16),
    "gpt-oss-full-layer-split": (1, 64, 8, 1, 600, 64, None, 1.0, 256, mx.float32),
}


@pytest.mark.parametrize("case", sorted(DECODE_CASES))
def test_decode_matches_reference(emulated: MetalKernels, case: str) -> None:
    batch, heads, kv_heads, queries, keys, dims, window, sink_scale, per_split, dtype = DECODE_CASES[case]
    q, k, v, sinks = attention_inputs(np.random.default_rng(len(case)), batch, heads, kv_heads, queries, keys,
                                      dims, sink_scale, dtype)
    ours = emulated.attention_decode(
        q, k, v, sinks, scale=dims**-0.5, window=window, keys_per_split=per_split
    )
    assert_close(ours, expected(q, k, v, sinks, window), dtype)


# (batch, query heads, KV heads, queries, keys, head size, window or None, sink scale, dtype).
PREFILL_CASES = {
    "tiny-window-prompt": (1, 8, 2, 37, 37, 16, 16, 1.0, mx.float32),
    "tiny-full-300-tokens": (1, 8, 2, 300, 300, 16, None, 1.0, mx.float32),
    "cached-window-batch-2": (2, 8, 2, 20, 75, 16, 16, 1.0, mx.bfloat16),
    "no-gqa-large-sinks": (1, 4, 4, 33, 33, 32, None, 20.0, mx.float32),
    "gqa2-window-128": (1, 4, 2, 150, 150, 64, 128, 1.0, mx.float32),
    "gpt-oss-sliding-cached": (1, 64, 8, 45, 200, 64, 128, 1.0, mx.bfloat16),
    "gpt-oss-full": (1, 64, 8, 40, 40, 64, None, 1.0, mx.float32),
    "gpt-oss-prompt-below-window": (1, 64, 8, 61, 61, 64, 128, 1.0, mx.bfloat16),
    "gpt-oss-prompt-above-window-float16": (1, 64, 8, 141, 141, 64, 128, 1.0, mx.float16),
}


@pytest.mark.parametrize("case", sorted(PREFILL_CASES))
def test_prefill_matches_reference(emulated: MetalKernels, case: str) -> None:
    batch, heads, kv_heads, queries, keys, dims, window, sink_scale, dtype = PREFILL_CASES[case]
    q, k, v, sinks = attention_inputs(np.random.default_rng(len(case)), batch, heads, kv_heads, queries, keys,
                                      dims, sink_scale, dtype)
    ours = emulated.attention_prefill(q, k, v, sinks, scale=dims**-0.5, window=window)
    assert_close(ours, expected(q, k, v, sinks, window), dtype)


def poisoned(values: mx.array, keys: slice) -> mx.array:
    """`values` with NaN in the given keys: any read of them that reaches the output shows."""
    array = np.array(values)
    array[:, :, keys] = np.nan
    return mx.array(array)


def test_decode_reads_only_the_window(emulated: MetalKernels) -> None:
    q, k, v, sinks = attention_inputs(np.random.default_rng(1), 1, 8, 2, 1, 90, 16, 1.0, mx.float32)
    hidden = slice(0, 90 - 16)  # older than the last query's 16-key window
    k_seen, v_seen = poisoned(k, hidden), poisoned(v, hidden)
    ours = emulated.attention_decode(q, k_seen, v_seen, sinks, scale=0.25, window=16)
    assert_close(ours, expected(q, k, v, sinks, 16), mx.float32)


def test_prefill_skips_tiles_outside_every_window(emulated: MetalKernels) -> None:
    """With 120 cached keys and 40 queries in a 16-key window, keys < 120 - 16 + 1 are seen by no
    query: NaN there leaves the output intact only if no tile containing them is visited."""
    q, k, v, sinks = attention_inputs(np.random.default_rng(2), 1, 8, 2, 40, 160, 16, 1.0, mx.float32)
    hidden = slice(0, 160 - 40 - 16 + 1)
    k_seen, v_seen = poisoned(k, hidden), poisoned(v, hidden)
    ours = emulated.attention_prefill(q, k_seen, v_seen, sinks, scale=0.25, window=16)
    assert_close(ours, expected(q, k, v, sinks, 16), mx.float32)


def test_prefill_skips_tiles_above_the_causal_diagonal(emulated: MetalKernels) -> None:
    """NaN in the last key's value (seen only by the last query; a NaN key would reach max(),
    which fast math leaves undefined): every threadgroup but the last one's (32 / G = 8 queries
    for G = 4) must come out intact."""
    q, k, v, sinks = attention_inputs(np.random.default_rng(3), 1, 8, 2, 50, 50, 16, 1.0, mx.float32)
    last = slice(49, 50)
    ours = emulated.attention_prefill(q, k, poisoned(v, last), sinks, scale=0.25, window=None)
    untouched = 50 // 8 * 8
    assert_close(ours[:, :, :untouched], expected(q, k, v, sinks, None)[:, :, :untouched], mx.float32)
    assert np.isnan(np.array(ours[:, :, -1])).all()


def test_strided_cache_views_are_read_in_place(emulated: MetalKernels) -> None:
    """The caches hand out slices of larger buffers; both kernels read them through their
    strides. (The emulator keeps an mx.array view's strides, as Metal sees them.)"""
    rng = np.random.default_rng(4)
    q, _, _, sinks = attention_inputs(rng, 1, 8, 2, 12, 40, 16, 1.0, mx.float32)
    buffers = [rng.standard_normal((1, 2, 64, 40), dtype=np.float32) for _ in range(2)]
    k, v = (buffer[:, :, 5:45, 3:19] for buffer in buffers)  # [1, 2, 40, 16] non-contiguous views
    for run in (emulated.attention_decode, emulated.attention_prefill):
        queries = q[:, :, -1:] if run == emulated.attention_decode else q
        ours = run(queries, k, v, sinks, scale=0.25, window=16)
        assert_close(ours, expected(queries, k, v, sinks, 16), mx.float32)


def test_attention_takes_decode_for_few_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    kernels = MetalKernels(lambda **_: pytest.fail("no kernel should be built"))
    taken: list[str] = []
    monkeypatch.setattr(kernels, "attention_decode", lambda *_, **__: taken.append("decode"))
    monkeypatch.setattr(kernels, "attention_prefill", lambda *_, **__: taken.append("prefill"))
    for queries in (1, DECODE_ATTENTION_MAX_QUERIES, DECODE_ATTENTION_MAX_QUERIES + 1):
        q = mx.zeros((1, 8, queries, 16))
        kernels.attention(q, q, q, mx.zeros((8,)), scale=0.25, window=None)
    assert taken == ["decode", "decode", "prefill"]


def test_unsupported_shapes_are_refused(emulated: MetalKernels) -> None:
    q, k, v, sinks = attention_inputs(np.random.default_rng(5), 1, 6, 2, 12, 12, 24, 1.0, mx.float32)
    with pytest.raises(ValueError, match="head size"):
        emulated.attention_decode(q, k, v, sinks, scale=0.2, window=None)
    q, k, v, sinks = attention_inputs(np.random.default_rng(5), 1, 6, 2, 12, 12, 16, 1.0, mx.float32)
    with pytest.raises(ValueError, match="dividing 32"):
        emulated.attention_prefill(q, k, v, sinks, scale=0.25, window=None)


# The 8-bit KV variants on cases whose key counts are not multiples of any tile, windows below
# and above 128 keys, sinks large and small (a scale of 20 or 40 dominates the softmax).
KV8_DECODE_CASES = ("tiny-below-window", "full-split-5-ways-batch-2", "uneven-splits-3-queries-no-gqa-large-sinks",
                    "sinks-dominate", "gpt-oss-sliding-layer", "gpt-oss-full-layer-split")
KV8_PREFILL_CASES = ("tiny-full-300-tokens", "cached-window-batch-2", "no-gqa-large-sinks", "gqa2-window-128",
                     "gpt-oss-prompt-above-window-float16")


def quantized_inputs(case: str, shape: tuple):
    batch, heads, kv_heads, queries, keys, dims, window, sink_scale = shape[:8]
    dtype = shape[-1]
    q, k, v, sinks = attention_inputs(np.random.default_rng(len(case)), batch, heads, kv_heads, queries, keys,
                                      dims, sink_scale, dtype)
    return q, quantize_kv(k), quantize_kv(v), sinks, window, dtype


@pytest.mark.parametrize("case", KV8_DECODE_CASES)
def test_decode_reads_an_8_bit_cache_like_the_twin_dequantising_it(emulated: MetalKernels, case: str) -> None:
    q, k, v, sinks, window, dtype = quantized_inputs(case, DECODE_CASES[case])
    dims = q.shape[-1]
    ours = emulated.attention_decode(q, k, v, sinks, scale=dims**-0.5, window=window,
                                     keys_per_split=DECODE_CASES[case][8])
    assert_close(ours, expected(q, k, v, sinks, window), dtype)


@pytest.mark.parametrize("case", KV8_PREFILL_CASES)
def test_prefill_reads_an_8_bit_cache_like_the_twin_dequantising_it(emulated: MetalKernels, case: str) -> None:
    q, k, v, sinks, window, dtype = quantized_inputs(case, PREFILL_CASES[case])
    ours = emulated.attention_prefill(q, k, v, sinks, scale=q.shape[-1] ** -0.5, window=window)
    assert_close(ours, expected(q, k, v, sinks, window), dtype)


def test_8_bit_cache_views_are_read_in_place(emulated: MetalKernels) -> None:
    """The 8-bit cache hands out views of its 256-token buffers (values and scales): strided."""
    rng = np.random.default_rng(5)
    q, k, v, sinks = attention_inputs(rng, 1, 8, 2, 12, 40, 16, 1.0, mx.float32)
    cache = FullCache(bits=8)
    k8, v8 = cache.update(k, v)
    assert k8.values.shape[2] == 40 and cache.state[0].shape[2] == 256
    for run in (emulated.attention_decode, emulated.attention_prefill):
        queries = q[:, :, -1:] if run == emulated.attention_decode else q
        ours = run(queries, k8, v8, sinks, scale=0.25, window=None)
        assert_close(ours, expected(queries, k8, v8, sinks, None), mx.float32)
    with pytest.raises(ValueError, match="both be 8-bit"):
        emulated.attention_decode(q[:, :, -1:], k8, v, sinks, scale=0.25, window=None)
