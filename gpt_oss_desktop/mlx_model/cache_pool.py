"""Several conversations' KV state at once: a least-recently-used pool of prompt caches within a
memory budget.

One engine answers several conversations in turns (clients of the local server, the app's chats
beside them). With one cache each turn would rewind the other conversation's history and
prefill its own again. The pool keeps a `PromptCache` per line of conversation: a prompt goes to
the cache that reuses the longest prefix of it. When continuing there would throw away part of
the history that cache last read (the prompt leaves it before the end of its last prompt: another
conversation, or an edited one), the pool forks that cache at the shared prefix instead, so both
stay. Past the budget the least recently used caches are dropped.

Several replies may run at once (the server decodes them in one batch), so a cache is taken
(pinned) for a reply and released when it ends: a pinned cache is never dropped, and a prompt
whose best cache is pinned gets a fork of it, so two replies never write into one cache.

An entry is plain state (token ids, per-layer arrays, window snapshots, the tool continuation)
that refers to no engine, so a later step can write one to disk and read it back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Model
from .prompt import RenderedChat, ToolContinuation
from .prompt_cache import PromptCache

MAX_CACHES = 16


@dataclass
class PooledCache:
    """One conversation's cache and what the engine needs to go on with it."""

    cache: PromptCache
    history: int = 0  # tokens of the last prompt it read: forking, not rewinding, protects them
    continuation: ToolContinuation | None = None  # its reply ended in a tool call
    last_used: int = 0
    in_use: bool = False  # a reply is writing it: pinned, not dropped or handed to another
    keep_on_disk: bool = False  # a server conversation's: written to disk when dropped (cache_spill)


class CachePool:
    def __init__(self, model: Model, budget_bytes: int, max_caches: int = MAX_CACHES) -> None:
        if budget_bytes <= 0 or max_caches < 1:
            raise ValueError(f"a cache pool needs a positive budget and room for one cache, not "
                             f"{budget_bytes} bytes and {max_caches} caches")
        self.model = model
        self.budget_bytes = budget_bytes
        self.max_caches = max_caches
        self._tick = 0
        self.entries: list[PooledCache] = [PooledCache(PromptCache(model))]
        # called with an entry about to be dropped and those staying (cache_spill writes it to disk)
        self.on_drop: Callable[[PooledCache, list[PooledCache]], None] | None = None

    @property
    def current(self) -> PooledCache:
        """The cache used last."""
        return max(self.entries, key=lambda entry: entry.last_used)

    @property
    def nbytes(self) -> int:
        return sum(entry.cache.nbytes for entry in self.entries)

    def continued_prompt(self, rendered: RenderedChat) -> list[int] | None:
        """The prompt continuing a tool-call turn one of the caches ended in, verbatim."""
        for entry in sorted(self.entries, key=lambda e: -e.last_used):
            prompt = entry.continuation.prompt(rendered) if entry.continuation else None
            if prompt is not None:
                return prompt
        return None

    def reusable_prefix(self, prompt: list[int]) -> int:
        """How many leading tokens of `prompt` some cache holds (what a prefill would skip)."""
        return max(entry.cache.reusable_prefix(prompt) for entry in self.entries)

    def take(self, prompt: list[int]) -> PooledCache:
        """The cache to prefill `prompt` in, pinned until `release`: the best reuse, forked when
        another reply is writing it or reusing it in place would drop another conversation's
        history. It becomes the most recently used."""
        self._tick += 1
        best = self.best_for(prompt)
        if best.in_use or best.cache.reusable_prefix(prompt) < best.history:
            best = PooledCache(best.cache.fork(prompt))
            self.entries.append(best)
        best.last_used = self._tick
        best.in_use = True
        self.settle(best)
        return best

    def release(self, entry: PooledCache) -> None:
        """The reply writing `entry` has ended: it may be dropped or reused again."""
        entry.in_use = False
        self.settle(entry)

    def adopt(self, cache: PromptCache, history: int | None = None, keep_on_disk: bool = False) -> PooledCache:
        """Add a cache read back from disk (cache_file) as the most recently used; its tokens
        (or the first `history`) are a conversation's history, which a prompt for another one
        forks rather than rewinds."""
        self._tick += 1
        entry = PooledCache(cache, history=len(cache.tokens) if history is None else history, last_used=self._tick,
                            keep_on_disk=keep_on_disk)
        self.entries.append(entry)
        self.settle(entry)
        return entry

    def best_for(self, prompt: list[int]) -> PooledCache:
        """The cache that reuses most of `prompt` (the most recently used of equals)."""
        return max(self.entries, key=lambda e: (e.cache.reusable_prefix(prompt), e.last_used))

    def settle(self, keep: PooledCache) -> None:
        """Drop the least recently used caches, never `keep` nor a pinned one, until the pool
        fits its budget and count (or only those are left)."""
        while len(self.entries) > self.max_caches or self.nbytes > self.budget_bytes:
            droppable = [e for e in self.entries if e is not keep and not e.in_use]
            if not droppable:
                return
            dropped = min(droppable, key=lambda e: e.last_used)
            self.entries.remove(dropped)
            if self.on_drop is not None:
                self.on_drop(dropped, self.entries)
