"""The decode loop: one sampled token at a time through the forward pass, until the caller stops
reading (the harmony parser saw a stop token) or a limit is met.

It is the one place a reply's tokens are chosen, so it is where constraints hook in: each
`LogitsProcessor` sees the ids generated so far and the next token's logits and returns the
logits to sample from (a grammar's mask, one token forced to end a reasoning budget). Without
processors the next token is sampled before the current one is read back, so the GPU never
waits on the host; a processor needs the current id first, so with processors the next logits are started on the
device before the processors run on the host (a grammar's mask overlaps the forward pass).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import mlx.core as mx

from .events import DoneReason
from .forward import ForwardPass
from .sampling import Sampler

LogitsProcessor = Callable[[Sequence[int], mx.array], mx.array]
"""(ids generated so far in this reply, [vocab] logits of the next token) → the logits to sample."""


class DecodeLoop:
    """`generated` holds every id yielded; `limit` says why the loop ended by itself (None when
    the caller stopped reading)."""

    def __init__(self, forward: ForwardPass, sampler: Sampler, processors: Sequence[LogitsProcessor] = ()) -> None:
        self.forward = forward
        self.sampler = sampler
        self.processors = tuple(processors)
        self.generated: list[int] = []
        self.limit: tuple[DoneReason, str] | None = None

    def _sample(self, logits: mx.array) -> mx.array:
        for processor in self.processors:
            logits = processor(self.generated, logits)
        token = self.sampler(logits)
        mx.async_eval(token)
        return token

    def tokens(
        self, logits: mx.array, *, max_new_tokens: int, context_limit: int, cancel: threading.Event
    ) -> Iterator[int]:
        """Yield each sampled id once the cache holds it, starting from the prompt's `logits`."""
        cache = self.forward.cache
        token = self._sample(logits)
        while True:
            if cancel.is_set():
                self.limit = ("cancelled", "")
                return
            if len(self.generated) >= max_new_tokens:
                self.limit = ("max_tokens", f"stopped after {len(self.generated)} tokens (the maximum)")
                return
            if len(cache.tokens) >= context_limit:
                self.limit = ("context_full", f"the context of {context_limit} tokens is full")
                return
            next_logits = self.forward.step(token)
            if self.processors:  # the next logits compute while the processors work on the host
                mx.async_eval(next_logits)
            next_token = None if self.processors else self._sample(next_logits)  # pipelined
            token_id = token.item()
            cache.record(token_id)
            self.generated.append(token_id)
            yield token_id
            token = next_token if next_token is not None else self._sample(next_logits)
