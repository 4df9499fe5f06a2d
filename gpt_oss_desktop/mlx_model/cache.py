"""KV caches: a growing cache for full-attention layers, a window cache for sliding layers.

Both keep keys in time order and end at the newest token, which is all the attention kernels
assume. A full cache rewinds by trimming; a sliding cache only holds the last `window - 1` keys
(all a new query can see besides itself), so it cannot rewind, and is instead snapshotted at turn
boundaries (about 3 MiB for gpt-oss-20b) and restored from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

from .kernels.layout import QuantizedKV, quantize_kv

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


KV_BITS = (16, 8)


class FullCache:
    """Every key and value so far, in buffers that grow in steps so appends stay cheap.

    `bits` 16 keeps them in the model's dtype; 8 keeps int8 values and a float32 scale per head
    and token (kernels.QuantizedKV), quantised as they are appended, so the attention kernels
    read about half the bytes. `state` is plain arrays either way: keys, values at 16 bits;
    key values, key scales, value values, value scales at 8.
    """

    def __init__(self, bits: int = 16) -> None:
        if bits not in KV_BITS:
            raise ValueError(f"kv_bits must be 16 or 8, not {bits!r}")
        self.bits = bits
        self._buffers: list[mx.array] = []
        self.offset = 0

    def update(
        self, keys: mx.array, values: mx.array
    ) -> tuple[mx.array, mx.array] | tuple[QuantizedKV, QuantizedKV]:
        """Append [B, H, L, D] keys and values; return all of them so far."""
        if self.bits == 8:
            quantized_keys, quantized_values = quantize_kv(keys), quantize_kv(values)
            parts = [quantized_keys.values, quantized_keys.scales, quantized_values.values, quantized_values.scales]
        else:
            parts = [keys, values]
        end = self.offset + keys.shape[2]
        if not self._buffers or end > self._buffers[0].shape[2]:
            capacity = ((end + _GROWTH_STEP - 1) // _GROWTH_STEP) * _GROWTH_STEP
            grown = [mx.zeros((*part.shape[:2], capacity, *part.shape[3:]), part.dtype) for part in parts]
            if self.offset:
                for new, old in zip(grown, self._buffers):
                    new[:, :, : self.offset] = old[:, :, : self.offset]
            self._buffers = grown
        for buffer, part in zip(self._buffers, parts):
            buffer[:, :, self.offset : end] = part
        self.offset = end
        views = [buffer[:, :, :end] for buffer in self._buffers]
        if self.bits == 8:
            return QuantizedKV(views[0], views[1]), QuantizedKV(views[2], views[3])
        return views[0], views[1]

    def trim_to(self, length: int) -> None:
        """Forget everything after the first `length` tokens."""
        if not 0 <= length <= self.offset:
            raise ValueError(f"cannot trim a cache of {self.offset} tokens to {length}")
        self.offset = length

    def prefix(self, length: int) -> FullCache:
        """A new cache of this one's first `length` tokens, sharing slices of its buffers: MLX
        does not write into an array another still reads, so either one's next append writes
        a buffer of its own."""
        if not 0 <= length <= self.offset:
            raise ValueError(f"a cache of {self.offset} tokens has no prefix of {length}")
        twin = FullCache(self.bits)
        twin._buffers = [buffer[:, :, :length] for buffer in self._buffers] if length else []
        twin.offset = length
        return twin

    def restore(self, buffers: list[mx.array], offset: int) -> None:
        """Hold `buffers` (what `state` returned, read back from disk by cache_file) covering
        `offset` tokens."""
        expected = 4 if self.bits == 8 else 2
        if offset and (len(buffers) != expected or any(b.shape[2] < offset for b in buffers)):
            raise ValueError(f"a {self.bits}-bit cache of {offset} tokens needs {expected} buffers that long")
        self._buffers, self.offset = (list(buffers) if offset else []), offset

    @property
    def nbytes(self) -> int:
        return sum(buffer.nbytes for buffer in self._buffers)

    @property
    def state(self) -> list[mx.array]:
        return list(self._buffers)


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
