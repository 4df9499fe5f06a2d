"""The model's KV state across turns: which tokens the per-layer caches hold, and where they can
be rewound to so the longest prefix shared with a new prompt is reused.

Full-attention caches rewind by trimming; sliding-window caches cannot, so they are snapshotted
at chosen positions (the end of the system and developer messages, the end of every prompt) and
the cache rewinds to the nearest snapshot at or before the shared prefix. When harmony drops the
previous turn's chain of thought, the new prompt leaves the cached tokens exactly at the previous
prompt's end, where a snapshot is, so only the new turn is prefilled.

This holds state only; the forward pass that fills it is `forward.ForwardPass`, driven by the
engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

from .cache import FullCache, WindowCache, WindowSnapshot
from .model import Model

MAX_SNAPSHOTS = 16


@dataclass(frozen=True)
class Checkpoint:
    windows: tuple[WindowSnapshot | None, ...]
    logits: mx.array | None  # logits after the token just before this position, when known


@dataclass(frozen=True)
class ResumePoint:
    """Where a prefill of a prompt continues from; `logits` when nothing is left to compute."""

    position: int
    logits: mx.array | None


def common_prefix_length(a: list[int], b: list[int]) -> int:
    limit = min(len(a), len(b))
    for index in range(limit):
        if a[index] != b[index]:
            return index
    return limit


def resume_point(cached: list[int], checkpoints: dict[int, bool], tokens: list[int]) -> tuple[int, bool]:
    """Where a prefill of `tokens` continues in a cache holding `cached` that can rewind to
    `checkpoints` (position -> whether its logits are kept), and whether those logits make the
    prefill empty. A function of plain values, so a cache file's header answers it unread."""
    shared = common_prefix_length(cached, tokens)
    if shared == len(tokens) and checkpoints.get(shared):
        return shared, True
    if shared == len(cached) and shared < len(tokens):
        return shared, False  # the cache is a prefix of the prompt: nothing to rewind
    limit = min(shared, len(tokens) - 1)
    return max(p for p in checkpoints if p <= limit), False


class PromptCache:
    """Owns the per-layer caches and the token ids they hold, and keeps them consistent."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.layers = model.make_cache()
        self.tokens: list[int] = []
        self._checkpoints: dict[int, Checkpoint] = {}
        self._checkpoints[0] = self._capture(None)
        self._before_last_step: tuple[int, Checkpoint] | None = None

    def _capture(self, logits: mx.array | None) -> Checkpoint:
        return Checkpoint(
            tuple(layer.snapshot() if isinstance(layer, WindowCache) else None for layer in self.layers),
            logits,
        )

    def _rewind(self, position: int) -> None:
        checkpoint = self._checkpoints[position]
        for layer, snapshot in zip(self.layers, checkpoint.windows):
            if isinstance(layer, FullCache):
                layer.trim_to(position)
            else:
                layer.restore(snapshot)
        self.tokens = self.tokens[:position]
        self._checkpoints = {p: c for p, c in self._checkpoints.items() if p <= position}

    def checkpoint(self, logits: mx.array | None = None) -> None:
        """Snapshot the window caches at the current end (cheap: ~3 MiB for 20b)."""
        self._checkpoints[len(self.tokens)] = self._capture(logits)
        if len(self._checkpoints) > MAX_SNAPSHOTS:
            oldest = sorted(p for p in self._checkpoints if p)[0]
            del self._checkpoints[oldest]

    def reusable_prefix(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` a prefill would not recompute."""
        return self._resume_point(tokens)[0]

    def _resume_point(self, tokens: list[int]) -> tuple[int, bool]:
        return resume_point(self.tokens, {p: c.logits is not None for p, c in self._checkpoints.items()}, tokens)

    def resume(self, tokens: list[int]) -> ResumePoint:
        """Rewind to the longest reusable prefix of `tokens`; the forward pass continues there."""
        if not tokens:
            raise ValueError("cannot prefill an empty prompt")
        start, stored = self._resume_point(tokens)
        if start < len(self.tokens) or stored:
            self._rewind(start)
        return ResumePoint(start, self._checkpoints[start].logits if stored else None)

    def fork(self, tokens: list[int]) -> "PromptCache":
        """A new cache holding this one's longest reusable prefix of `tokens`, ready to prefill the
        rest, while this one keeps all it holds.

        Nothing is copied: window snapshots are never changed in place, and each full-attention
        buffer is sliced into a new array, so the first append to either cache writes a buffer of
        its own (MLX does not write into an array another one still reads)."""
        position = self._resume_point(tokens)[0]
        twin = PromptCache(self._model)
        checkpoint = self._checkpoints[position]
        for index, (mine, snapshot) in enumerate(zip(self.layers, checkpoint.windows)):
            if isinstance(mine, FullCache):
                twin.layers[index] = mine.prefix(position)
            else:
                twin.layers[index].restore(snapshot)
        twin.tokens = self.tokens[:position]
        twin._checkpoints = {p: c for p, c in self._checkpoints.items() if p <= position}
        return twin

    def remember_before_step(self) -> None:
        """Keep (references to) the state before the token about to be fed, for
        `checkpoint_before_last_step`."""
        self._before_last_step = (len(self.tokens), self._capture(None))

    def checkpoint_before_last_step(self) -> None:
        """Keep the state before the last fed token, e.g. before <|return|>, which the history
        re-renders as <|end|>: the next turn then reuses everything before it."""
        if self._before_last_step is not None:
            position, checkpoint = self._before_last_step
            self._checkpoints[position] = checkpoint

    @property
    def checkpoints(self) -> dict[int, Checkpoint]:
        """The positions the cache can rewind to (a copy; cache_file writes them)."""
        return dict(self._checkpoints)

    def restore_state(self, tokens: list[int], checkpoints: dict[int, Checkpoint]) -> None:
        """Take the tokens and snapshots of a cache read back from disk (cache_file), whose
        layers already hold those tokens' keys and values."""
        self.tokens = list(tokens)
        self._checkpoints = dict(checkpoints)
        self._before_last_step = None

    def record(self, token_id: int) -> None:
        self.tokens.append(token_id)

    def state(self) -> list[mx.array]:
        return [array for layer in self.layers for array in layer.state]

    @property
    def nbytes(self) -> int:
        """The memory this cache keeps alive: the layers' keys and values and the window
        snapshots (an array shared by several is counted once)."""
        arrays = {id(a): a for a in self.state()}
        for checkpoint in self._checkpoints.values():
            for snapshot in checkpoint.windows:
                if snapshot is not None and snapshot.keys is not None:
                    arrays.update({id(snapshot.keys): snapshot.keys, id(snapshot.values): snapshot.values})
        return sum(array.nbytes for array in arrays.values())
