"""The forward pass over a `PromptCache`: a prompt prefilled in chunks from the longest prefix
the cache can reuse, then one sampled token at a time.

The engine drives it; the cache only holds the state. Chunks of `chunk_size` bound the
activation memory; chunk edges also fall on the positions the caller asks to snapshot (the end
of the system and developer messages), so window caches can rewind there later.

A decode step is a `StepRequest` (a cache and its next token); `answer_steps` runs any number
of them, of different sequences, as one batched forward pass (`Model.decode_rows`), so a
server can decode several replies for about the price of one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import mlx.core as mx

from .model import Model
from .prompt_cache import PromptCache


class Cancelled(Exception):
    """Raised out of a prefill when the caller's cancel event is set (between chunks)."""


@dataclass(frozen=True)
class PrefillResult:
    logits: mx.array  # [vocab] for the last prompt token
    reused_tokens: int


@dataclass
class StepRequest:
    """One sequence's next decode step: feed `token` (a 0-d id, possibly still lazy) to `cache`.
    Whoever runs the step sets `logits`, the next token's [vocab] logits."""

    cache: PromptCache
    token: mx.array
    logits: mx.array | None = None

    def answer(self) -> mx.array:
        if self.logits is None:
            raise RuntimeError("a decode step was resumed before it was run (answer_steps sets its logits)")
        return self.logits


def answer_steps(model: Model, requests: Sequence[StepRequest]) -> None:
    """Run the steps of several sequences (each its own cache and length) as one forward pass
    and set each request's logits (lazy: the caller evaluates them).

    The token ids are recorded by `PromptCache.record` once they are known, so decoding can
    stay pipelined. The state before each token is remembered for
    `checkpoint_before_last_step`."""
    for request in requests:
        request.cache.remember_before_step()
    tokens = mx.concatenate([request.token.reshape(1) for request in requests])
    logits = model.lm_head(model.decode_rows(tokens, [request.cache.layers for request in requests]))
    for row, request in enumerate(requests):
        request.logits = logits[row]


class ForwardPass:
    def __init__(self, model: Model, cache: PromptCache, chunk_size: int = 512) -> None:
        self.model = model
        self.cache = cache
        self.chunk_size = chunk_size

    def prefill(
        self,
        tokens: list[int],
        checkpoints: Iterable[int] = (),
        cancel: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> PrefillResult:
        """Make the cache hold exactly `tokens` and return the last token's logits, snapshotting
        the window caches at each of `checkpoints` (positions) and at the end."""
        cache = self.cache
        resume = cache.resume(tokens)
        start = resume.position
        if resume.logits is not None:
            return PrefillResult(resume.logits, start)

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
                hidden = self.model.hidden_states(chunk, cache.layers, last_only=final)
                cache.tokens.extend(tokens[position:end])
                if final:
                    logits = self.model.lm_head(hidden[0, -1])
                    mx.eval(logits, *cache.state())
                else:
                    mx.eval(*cache.state())
                position = end
                if progress is not None:
                    progress(position - start, len(tokens) - start)
            cache.checkpoint(logits if edge == len(tokens) else None)
        return PrefillResult(logits, start)

    def step(self, token: mx.array) -> mx.array:
        """Feed one sampled token (a 0-d array, possibly still lazy); return the next logits
        (a batch of one: see `answer_steps`)."""
        request = StepRequest(self.cache, token)
        answer_steps(self.model, [request])
        return request.answer()
