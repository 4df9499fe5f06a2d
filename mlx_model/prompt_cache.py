"""The model's KV state across turns: reuse the longest prefix shared with what is cached.

Full-attention caches rewind by trimming; sliding-window caches cannot, so they are snapshotted
at chosen positions (the end of the system and developer messages, the end of every prompt) and
the cache rewinds to the nearest snapshot at or before the shared prefix. When harmony drops the
previous turn's chain of thought, the new prompt leaves the cached tokens exactly at the previous
prompt's end, where a snapshot is, so only the new turn is prefilled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterable

import mlx.core as mx

from .cache import FullCache, WindowCache, WindowSnapshot
from .model import Model

MAX_SNAPSHOTS = 16


class Cancelled(Exception):
    """Raised out of a prefill when the caller's cancel event is set (between chunks)."""


@dataclass(frozen=True)
class Checkpoint:
    windows: tuple[WindowSnapshot | None, ...]
    logits: mx.array | None  # logits after the token just before this position, when known


@dataclass(frozen=True)
class PrefillResult:
    logits: mx.array  # [vocab] for the last prompt token
    reused_tokens: int


def common_prefix_length(a: list[int], b: list[int]) -> int:
    limit = min(len(a), len(b))
    for index in range(limit):
        if a[index] != b[index]:
            return index
    return limit


class PromptCache:
    """Owns the per-layer caches and the token ids they hold, and keeps them consistent."""

    def __init__(self, model: Model, chunk_size: int = 512) -> None:
        self.model = model
        self.chunk_size = chunk_size
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
        """(position to continue from, whether stored logits make the prefill empty)."""
        shared = common_prefix_length(self.tokens, tokens)
        checkpoint = self._checkpoints.get(shared)
        if shared == len(tokens) and checkpoint is not None and checkpoint.logits is not None:
            return shared, True
        if shared == len(self.tokens) and shared < len(tokens):
            return shared, False  # the cache is a prefix of the prompt: nothing to rewind
        limit = min(shared, len(tokens) - 1)
        return max(p for p in self._checkpoints if p <= limit), False

    def prefill(
        self,
        tokens: list[int],
        checkpoints: Iterable[int] = (),
        cancel: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> PrefillResult:
        """Make the cache hold exactly `tokens` and return the last token's logits.

        Chunks of `chunk_size` bound the activation memory; chunk edges also fall on each of
        `checkpoints` (positions) so the window caches can be snapshotted there.
        """
        if not tokens:
            raise ValueError("cannot prefill an empty prompt")
        start, stored = self._resume_point(tokens)
        if start < len(self.tokens) or stored:
            self._rewind(start)
        if stored:
            return PrefillResult(self._checkpoints[start].logits, start)

        edges = sorted({p for p in checkpoints if start < p < len(tokens)} | {len(tokens)})
        position = start
        logits = None
        for edge in edges:
            while position < edge:
                if cancel is not None and cancel.is_set():
                    raise Cancelled
                end = min(position + self.chunk_size, edge)
                chunk = mx.array(tokens[position:end], dtype=mx.uint32)[None]
                final = end == len(tokens)
                hidden = self.model.hidden_states(chunk, self.layers, last_only=final)
                self.tokens.extend(tokens[position:end])
                if final:
                    logits = self.model.lm_head(hidden[0, -1])
                    mx.eval(logits, *self._state())
                else:
                    mx.eval(*self._state())
                position = end
                if progress is not None:
                    progress(position - start, len(tokens) - start)
            self.checkpoint(logits if edge == len(tokens) else None)
        return PrefillResult(logits, start)

    def step(self, token: mx.array) -> mx.array:
        """Feed one sampled token (a 0-d array, possibly still lazy); return the next logits.

        The token id is recorded by `record`, once it is known, so decoding can stay pipelined.
        The state before the token is remembered (references only) for `checkpoint_before_last_step`.
        """
        self._before_last_step = (len(self.tokens), self._capture(None))
        hidden = self.model.hidden_states(token.reshape(1, 1), self.layers)
        return self.model.lm_head(hidden[0, -1])

    def checkpoint_before_last_step(self) -> None:
        """Keep the state before the last fed token, e.g. before <|return|>, which the history
        re-renders as <|end|>: the next turn then reuses everything before it."""
        if self._before_last_step is not None:
            position, checkpoint = self._before_last_step
            self._checkpoints[position] = checkpoint

    def record(self, token_id: int) -> None:
        self.tokens.append(token_id)

    def _state(self) -> list[mx.array]:
        return [array for layer in self.layers for array in layer.state]

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers)
