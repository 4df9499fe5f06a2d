"""The MLX-op twins of the Metal kernels: the reference they are tested against, and the path
used wherever Metal is not available."""

from __future__ import annotations

import mlx.core as mx

from .layout import ExpertWeights, QuantizedKV

# Below this many (token, expert) pairs the gathered matmuls run in token order; above it tokens
# are sorted by expert first so each expert's weights are read once (as mlx-lm does).
_SORT_THRESHOLD = 64

# MLX's attention off Metal materializes every query-key score: a 512-token prefill chunk over
# 8k keys held 1.5 GiB for gpt-oss's 64 heads. Query blocks, run one after another, keep that
# transient near this many bytes (measured: about 18 bytes a score at the peak, as consecutive
# blocks' temporaries overlap). Each query's row is computed exactly as without blocks.
_SCORE_BUDGET_BYTES = 256 * 1024**2
_BYTES_PER_SCORE = 18


def _mxfp4_gather_matmul(
    x: mx.array, blocks: mx.array, scales: mx.array, indices: mx.array, sorted_indices: bool
) -> mx.array:
    return mx.gather_qmm(
        x,
        blocks,
        scales,
        None,
        rhs_indices=indices,
        transpose=True,
        group_size=32,
        bits=4,
        mode="mxfp4",
        sorted_indices=sorted_indices,
    )


def swiglu(gate_up: mx.array, limit: float, alpha: float) -> mx.array:
    """gpt-oss's clamped SwiGLU on interleaved rows: gate = even, linear = odd, +1 on linear."""
    gate = mx.minimum(gate_up[..., ::2], limit)
    linear = mx.clip(gate_up[..., 1::2], -limit, limit)
    return gate * mx.sigmoid(alpha * gate) * (linear + 1)


def moe(
    x: mx.array,
    indices: mx.array,
    weights: mx.array,
    experts: ExpertWeights,
    *,
    swiglu_limit: float,
    swiglu_alpha: float,
) -> mx.array:
    """Σ_k weights[t,k] · (W_down · SwiGLU(W_gate_up · x_t + b_gate_up) + b_down) for [T, H] x.

    Computed in float32 whatever x's dtype, rounding to x's dtype only what the Metal kernels
    store (the SwiGLU activations, the output), so the twin keeps their numerics. Off Metal this
    is also what makes it fast: MLX's CPU gather_qmm multiplies in the activations' dtype, one
    scalar at a time, and bfloat16 arithmetic there rounds in software after every operation
    (measured: 10-15x slower than float32 at gpt-oss's shapes, and it sums in bfloat16).
    """
    tokens, top_k = indices.shape
    do_sort = indices.size >= _SORT_THRESHOLD
    x32 = x.astype(mx.float32)
    if do_sort:
        flat = indices.flatten()
        order = mx.argsort(flat)
        restore = mx.argsort(order)
        rows = x32[order // top_k][:, None, :]  # [T*k, 1, H], grouped by expert
        expert_ids = flat[order]
    else:
        rows = x32[:, None, None, :]  # [T, 1, 1, H] broadcasts against [T, k]
        expert_ids = indices

    gate_up = _mxfp4_gather_matmul(rows, experts.gate_up_blocks, experts.gate_up_scales, expert_ids, do_sort)
    gate_up = gate_up.squeeze(-2) + experts.gate_up_bias[expert_ids].astype(mx.float32)
    hidden = swiglu(gate_up, swiglu_limit, swiglu_alpha).astype(x.dtype).astype(mx.float32)
    down = _mxfp4_gather_matmul(hidden[..., None, :], experts.down_blocks, experts.down_scales, expert_ids, do_sort)
    down = down.squeeze(-2) + experts.down_bias[expert_ids].astype(mx.float32)

    if do_sort:
        down = down[restore].reshape(tokens, top_k, -1)
    return (down * weights[..., None].astype(mx.float32)).sum(axis=1).astype(x.dtype)


def window_mask(queries: int, keys: int, window: int | None) -> mx.array | str | None:
    """Which keys each query sees, when the keys end at the last query (what every cache keeps).

    Key j is visible to query i iff j <= i + (keys - queries) and, on sliding layers,
    j > i + (keys - queries) - window: 128 keys including the current one for gpt-oss.
    """
    shift = keys - queries
    needs_window = window is not None and keys > window
    if queries == 1 and not needs_window:
        return None
    if not needs_window:
        return "causal"
    query_pos = mx.arange(queries)[:, None] + shift
    key_pos = mx.arange(keys)[None, :]
    return (key_pos <= query_pos) & (key_pos > query_pos - window)


def _dequantized(rows: mx.array | QuantizedKV, dtype: mx.Dtype) -> mx.array:
    return rows.dequantize(dtype) if isinstance(rows, QuantizedKV) else rows


def attention(
    q: mx.array,
    k: mx.array | QuantizedKV,
    v: mx.array | QuantizedKV,
    sinks: mx.array,
    *,
    scale: float,
    window: int | None,
) -> mx.array:
    """Softmax attention with one learned sink logit per head (denominator only) and GQA.

    q [B, Hq, L, D]; k, v [B, Hkv, S, D] ending at the last query, or 8-bit (QuantizedKV: only
    each query block's keys are dequantised, to q's dtype); sinks [Hq].
    """
    queries, keys = q.shape[2], k.shape[2]
    block = max(1, _SCORE_BUDGET_BYTES // (q.shape[0] * q.shape[1] * keys * _BYTES_PER_SCORE))
    sinks = sinks.astype(q.dtype)
    outputs = []
    for start in range(0, queries, block):
        end = min(start + block, queries)
        # The block's keys end at its last query, as window_mask assumes; a sliding layer's
        # block sees at most `window - 1` keys before its first query.
        key_end = keys - (queries - end)
        key_start = 0 if window is None else max(0, key_end - (end - start) - window + 1)
        block_k = _dequantized(k[:, :, key_start:key_end], q.dtype)
        block_v = _dequantized(v[:, :, key_start:key_end], q.dtype)
        block_q = q[:, :, start:end]
        if outputs:  # one block at a time: otherwise MLX may hold every block's scores at once
            block_q, block_k, block_v = mx.depends([block_q, block_k, block_v], outputs[-1])
        mask = window_mask(end - start, key_end - key_start, window)
        outputs.append(mx.fast.scaled_dot_product_attention(
            block_q, block_k, block_v, scale=scale, mask=mask, sinks=sinks
        ))
    return outputs[0] if len(outputs) == 1 else mx.concatenate(outputs, axis=2)
