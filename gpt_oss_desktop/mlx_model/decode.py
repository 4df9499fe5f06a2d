"""The decode loop: one sampled token at a time through the forward pass, until the caller stops
(the harmony parser saw a stop token) or a limit is met.

It is the one place a reply's tokens are chosen, so it is where constraints hook in: each
`LogitsProcessor` sees the ids generated so far and the next token's logits and returns the
logits to sample from (a grammar's mask, one token forced to end a reasoning budget). Without
processors the next token is sampled before the current one is read back, so the GPU never
waits on the host; a processor needs the current id first, so with processors the next logits are started on the
device before the processors run on the host (a grammar's mask overlaps the forward pass).

The loop does not run the forward pass itself: each step is a `forward.StepRequest` that
whoever drives the reply answers, alone (`Engine.reply`) or batched with other replies' steps
(the server's `DecodeBatch`), so one loop serves both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import mlx.core as mx

from .events import DoneReason
from .forward import StepRequest
from .prompt_cache import PromptCache
from .sampling import Sampler

LogitsProcessor = Callable[[Sequence[int], mx.array], mx.array]
"""(ids generated so far in this reply, [vocab] logits of the next token) → the logits to sample."""


class DecodeLoop:
    """`start` with the prompt's logits, then alternate `next_step` (the step to run, or None at
    a limit) and `take` (its answer in, the fed token's id out). `generated` holds every id
    taken; `limit` says why the loop ended by itself (None when the caller stopped)."""

    def __init__(self, cache: PromptCache, sampler: Sampler, processors: Sequence[LogitsProcessor] = ()) -> None:
        self.cache = cache
        self.sampler = sampler
        self.processors = tuple(processors)
        self.generated: list[int] = []
        self.limit: tuple[DoneReason, str] | None = None
        self._token: mx.array | None = None  # sampled, not yet fed
        self._logits: mx.array | None = None  # to sample from once the processors have the last id

    def _sample(self, logits: mx.array) -> mx.array:
        for processor in self.processors:
            logits = processor(self.generated, logits)
        token = self.sampler(logits)
        mx.async_eval(token)
        return token

    def start(self, logits: mx.array) -> None:
        """Sample the first token from the prompt's last `logits`."""
        self._token = self._sample(logits)

    def next_step(self, *, max_new_tokens: int, context_limit: int, cancel: threading.Event) -> StepRequest | None:
        """The step that feeds the token just sampled, or None once a limit is met."""
        if self._token is None:
            self._token = self._sample(self._logits)
        if cancel.is_set():
            self.limit = ("cancelled", "")
        elif len(self.generated) >= max_new_tokens:
            self.limit = ("max_tokens", f"stopped after {len(self.generated)} tokens (the maximum)")
        elif len(self.cache.tokens) >= context_limit:
            self.limit = ("context_full", f"the context of {context_limit} tokens is full")
        return None if self.limit else StepRequest(self.cache, self._token)

    def take(self, request: StepRequest) -> int:
        """The answered step's token id, now that the cache holds it."""
        next_logits = request.answer()
        if self.processors:  # the next logits compute while the processors work on the host
            mx.async_eval(next_logits)
        next_token = None if self.processors else self._sample(next_logits)  # pipelined
        token_id = self._token.item()
        self.cache.record(token_id)
        self.generated.append(token_id)
        self._token, self._logits = next_token, next_logits
        return token_id
