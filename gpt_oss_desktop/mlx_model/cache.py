"""KV caches: a growing cache for full-attention layers, a window cache for sliding layers.

Both keep keys in time order and end at the newest token, which is all the attention kernels
assume. A full cache rewinds by trimming; a sliding cache only holds the last `window - 1` keys
(all a new query can see besides itself), so it cannot rewind, and is instead snapshotted at turn
boundaries (about 3 MiB for gpt-oss-20b) and restored from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

_GROWTH_STEP = 256


class _KeyValues:
    """Keys and values [B, H, S, D] of one layer and how many tokens they cover."""

    def __init__(self) -> None:
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    @property
    def nbytes(self) -> int:
        return 0 if self.keys is None else self.keys.nbytes + self.values.nbytes

    @property
    def state(self) -> list[mx.array]:
        return [] if self.keys is None else [self.keys, self.values]


class FullCache(_KeyValues):
    """Every key and value so far, in a buffer that grows in steps so appends stay cheap."""

    def update(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        """Append [B, H, L, D] keys and values; return all of them so far."""
        length = keys.shape[2]
        end = self.offset + length
        if self.keys is None or end > self.keys.shape[2]:
            capacity = ((end + _GROWTH_STEP - 1) // _GROWTH_STEP) * _GROWTH_STEP
            shape = (*keys.shape[:2], capacity, keys.shape[3])
            grown_keys = mx.zeros(shape, keys.dtype)
            grown_values = mx.zeros(shape, values.dtype)
            if self.keys is not None and self.offset:
                grown_keys[:, :, : self.offset] = self.keys[:, :, : self.offset]
                grown_values[:, :, : self.offset] = self.values[:, :, : self.offset]
            self.keys, self.values = grown_keys, grown_values
        self.keys[:, :, self.offset : end] = keys
        self.values[:, :, self.offset : end] = values
        self.offset = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def trim_to(self, length: int) -> None:
        """Forget everything after the first `length` tokens."""
        if not 0 <= length <= self.offset:
            raise ValueError(f"cannot trim a cache of {self.offset} tokens to {length}")
        self.offset = length


@dataclass(frozen=True)
class WindowSnapshot:
    offset: int
    keys: mx.array | None
    values: mx.array | None


class WindowCache(_KeyValues):
    """The last `window - 1` keys and values of a sliding-window layer."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = window

    def update(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        """Append [B, H, L, D]; return the kept past followed by the new keys (time order)."""
        if self.keys is not None:
            keys = mx.concatenate([self.keys, keys], axis=2)
            values = mx.concatenate([self.values, values], axis=2)
        self.offset += keys.shape[2] - (0 if self.keys is None else self.keys.shape[2])
        keep = self.window - 1
        self.keys = keys[:, :, -keep:] if keep else keys[:, :, :0]
        self.values = values[:, :, -keep:] if keep else values[:, :, :0]
        return keys, values

    def snapshot(self) -> WindowSnapshot:
        return WindowSnapshot(self.offset, self.keys, self.values)

    def restore(self, snapshot: WindowSnapshot) -> None:
        self.offset, self.keys, self.values = snapshot.offset, snapshot.keys, snapshot.values


LayerCache = FullCache | WindowCache
