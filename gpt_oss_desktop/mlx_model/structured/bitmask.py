"""Token masks as bits: word t // 32, bit t % 32 of an int32 row (llguidance's layout).

The row is filled on the CPU and expanded on the device, where the logits are: 25 KB cross
instead of 201,088 booleans. The expansion is plain MLX (shift, and, where), so it runs on the
GPU on a Mac and on the CPU backend elsewhere; llguidance.mlx's Metal kernel computes the same
but exists only with Metal.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def allocate(n_vocab: int) -> np.ndarray:
    return np.zeros((n_vocab + 31) // 32, dtype=np.int32)


def only(mask: np.ndarray, token_id: int) -> np.ndarray:
    """Set `mask` to allow exactly one token (a forced token)."""
    mask[:] = 0
    allow(mask, token_id)
    return mask


def allow(mask: np.ndarray, token_id: int) -> None:
    mask.view(np.uint32)[token_id // 32] |= np.uint32(1 << (token_id % 32))


def forbid(mask: np.ndarray, token_id: int) -> None:
    mask.view(np.uint32)[token_id // 32] &= np.uint32(~(1 << (token_id % 32)) & 0xFFFFFFFF)


def is_allowed(mask: np.ndarray, token_id: int) -> bool:
    return bool((int(mask.view(np.uint32)[token_id // 32]) >> (token_id % 32)) & 1)


def allowed_ids(mask: np.ndarray, n_vocab: int) -> np.ndarray:
    return np.flatnonzero(np.unpackbits(mask.view(np.uint8), bitorder="little")[:n_vocab])


def allowed_count(mask: np.ndarray) -> int:
    return int(np.unpackbits(mask.view(np.uint8)).sum())


def apply(logits: mx.array, mask: np.ndarray) -> mx.array:
    """`logits` ([vocab]) with every token the mask forbids at -inf (lazy, on the device).
    Every array is made here, on the caller's thread: MLX streams belong to the thread that made
    them, and the server decodes on an engine thread of its own."""
    bits = (mx.array(mask)[:, None] >> mx.arange(32, dtype=mx.int32)) & 1
    allowed = bits.reshape(-1)[: logits.shape[-1]].astype(mx.bool_)
    return mx.where(allowed, logits, mx.array(-mx.inf, dtype=logits.dtype))
