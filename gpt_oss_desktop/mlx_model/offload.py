"""Weights that stay on disk: the embedding table and, under a memory budget, the experts.

The checkpoint's own shards are memory-mapped read-only; only what a forward pass touches is
copied into MLX memory. The embedding reads just the rows of the tokens being embedded (one
1.16 GB table for 20b, of which a chat touches a few hundred kilobytes). Paged experts keep a
fixed pool of slots per layer, least recently used first out, and read a missing expert's bytes
(12.6 MiB at the real shape) when the router picks it; the math runs on the pool through the
same kernels, so outputs equal the all-resident path.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .checkpoint import TensorLocation
from .events import ExpertPaging
from .kernels import EXPERT_TENSOR_NAMES, ExpertWeights


def tensor_shape(location: TensorLocation, dtype: type) -> tuple[int, ...]:
    """The tensor's shape when its bytes are read as `dtype` (MXFP4 blocks as uint32 words)."""
    shape = list(location.spec.shape)
    if location.spec.dtype == "U8" and dtype is np.uint32:
        shape = [*shape[:-2], shape[-2] * shape[-1] // 4]
    assert np.prod(shape) * np.dtype(dtype).itemsize == location.spec.nbytes
    return tuple(shape)


def mapped_tensor(location: TensorLocation, dtype: type) -> np.memmap:
    return np.memmap(location.file, dtype=dtype, mode="r", offset=location.offset,
                     shape=tensor_shape(location, dtype))


@functools.cache
def _descriptor(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


def read_rows(location: TensorLocation, first: int, count: int, dtype: type) -> np.ndarray:
    """Rows [first, first + count) along a tensor's first axis, read with pread: unlike reading
    through a mapping, the pages do not stay in this process's resident set afterwards."""
    shape = tensor_shape(location, dtype)
    row_bytes = location.spec.nbytes // shape[0]
    raw = os.pread(_descriptor(location.file), row_bytes * count, location.offset + first * row_bytes)
    return np.frombuffer(raw, dtype=dtype).reshape(count, *shape[1:])


class MappedEmbedding(nn.Module):
    """An embedding whose table stays in the memory-mapped shard; rows are read on lookup.

    Reading the ids needs them on the host, which ends MLX's lazy pipelining for one step per
    token: a small cost for 1.16 GB less resident memory (the table is the same for 20b and 120b).
    """

    def __init__(self, location: TensorLocation, dtype: mx.Dtype) -> None:
        super().__init__()
        self._table = mapped_tensor(location, np.uint16)  # bfloat16 bit patterns
        self._dtype = dtype

    def __call__(self, tokens: mx.array) -> mx.array:
        rows = self._table[np.asarray(tokens, dtype=np.int64)]
        return mx.array(rows).view(mx.bfloat16).astype(self._dtype)


@dataclass
class PagingStats:
    """One layer's counters, updated as experts are looked up (the engine sums them into an
    `events.ExpertPaging` for callers)."""

    hits: int = 0
    misses: int = 0
    bytes_read: int = 0

    @property
    def hit_rate(self) -> float:
        return self.figures().hit_rate

    def figures(self) -> ExpertPaging:
        return ExpertPaging(self.hits, self.misses, self.bytes_read)


@dataclass(frozen=True)
class ExpertBatch:
    """Token rows [start, stop) whose experts are all resident, with indices into the pool."""

    start: int
    stop: int
    weights: ExpertWeights
    indices: mx.array


class PagedExperts(nn.Module):
    """One layer's experts with `slots` of them resident; the rest are read on demand."""

    def __init__(self, locations: dict[str, TensorLocation], slots: int, dtype: mx.Dtype) -> None:
        super().__init__()
        self._locations = {part: locations[part] for part in EXPERT_TENSOR_NAMES}
        self._file_dtypes = {
            part: np.uint32 if part.endswith("blocks") else np.uint8 if part.endswith("scales") else np.uint16
            for part in EXPERT_TENSOR_NAMES
        }
        shapes = {part: tensor_shape(self._locations[part], self._file_dtypes[part]) for part in EXPERT_TENSOR_NAMES}
        self.num_experts = shapes["gate_up_proj_blocks"][0]
        self.slots = min(slots, self.num_experts)
        if self.slots < 1:
            raise ValueError("expert paging needs at least one slot per layer")
        # read per miss
        self.expert_bytes = sum(location.spec.nbytes // self.num_experts for location in self._locations.values())
        self._dtype = dtype
        self._pool = {
            part: mx.zeros((self.slots, *shape[1:]), dtype=self._mlx_dtype(part)) for part, shape in shapes.items()
        }
        self.slot_bytes = self.resident_bytes // self.slots  # biases in the compute dtype
        self._slot_of: OrderedDict[int, int] = OrderedDict()  # expert -> slot, least recent first
        self.stats = PagingStats()

    def _mlx_dtype(self, part: str) -> mx.Dtype:
        if part.endswith("blocks"):
            return mx.uint32
        return mx.uint8 if part.endswith("scales") else self._dtype

    @property
    def resident_bytes(self) -> int:
        return sum(array.nbytes for array in self._pool.values())

    def _load(self, expert: int, slot: int) -> None:
        for part, location in self._locations.items():
            values = mx.array(read_rows(location, expert, 1, self._file_dtypes[part])[0])
            if part.endswith("bias"):
                values = values.view(mx.bfloat16).astype(self._dtype)
            self._pool[part][slot] = values
        self.stats.bytes_read += self.expert_bytes

    def _make_resident(self, experts: list[int]) -> None:
        needed = set(experts)
        for expert in experts:
            if expert in self._slot_of:
                self._slot_of.move_to_end(expert)
                self.stats.hits += 1
                continue
            self.stats.misses += 1
            if len(self._slot_of) < self.slots:
                slot = len(self._slot_of)
            else:
                victim = next(e for e in self._slot_of if e not in needed)
                slot = self._slot_of.pop(victim)
            self._load(expert, slot)
            self._slot_of[expert] = slot

    def batches(self, indices: mx.array) -> Iterator[ExpertBatch]:
        """Split the tokens into runs whose distinct experts fit the pool, load each run's
        experts, and give their indices into the pool."""
        host = np.asarray(indices)
        start = 0
        while start < len(host):
            distinct: list[int] = []
            stop = start
            while stop < len(host):
                new = [int(e) for e in dict.fromkeys(host[stop].tolist()) if e not in distinct]
                if len(distinct) + len(new) > self.slots:
                    break
                distinct += new
                stop += 1
            if stop == start:
                raise ValueError(f"a token needs {len(set(host[start].tolist()))} experts but only "
                                 f"{self.slots} slots are resident")
            self._make_resident(distinct)
            lookup = np.zeros(self.num_experts, dtype=np.uint32)
            for expert, slot in self._slot_of.items():
                lookup[expert] = slot
            yield ExpertBatch(start, stop, ExpertWeights.from_checkpoint(self._pool),
                              mx.array(lookup[host[start:stop]]))
            start = stop
