"""Prompt caches that outlive the memory pool: the local server has no chat ids, so the caches
of its conversations (`PooledCache.keep_on_disk`: replies asked with `keep_on_disk`) that the
pool drops, and all it holds at shutdown, go to disk under the tokens they hold, and a prompt
that one of those files spares much more of than the pool does reads it back, after a restart
too. The app's chats have files of their own (by chat id), so theirs are not written here.

Only what is worth it is written: a cache of at least `min_tokens` whose history (the last prompt
it read) no other cache, in memory or on disk, already spares in full. What a cache holds beyond
its history is that reply's own tokens, which the next prompt renders again (harmony drops the
chain of thought), so it is not worth a file of its own. A file another one now covers is
removed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .cache_file import CacheStamp, CacheStore, CacheSummary
from .cache_pool import PooledCache
from .model import Model
from .prompt_cache import PromptCache

DEFAULT_MIN_TOKENS = 1024  # below this a prefill costs less than reading and writing the file
_log = logging.getLogger(__name__)


def _key(tokens: list[int]) -> str:
    return "tokens:" + hashlib.sha256(np.asarray(tokens, dtype="<i4").tobytes()).hexdigest()


def _spares(reusable_prefix: Callable[[list[int]], int], tokens: list[int], history: int) -> bool:
    """Whether a cache with this `reusable_prefix` spares a prompt continuing the first
    `history` of `tokens` all of them."""
    return reusable_prefix([*tokens[:history], -1]) >= history


class SpilledCaches:
    """The pool's caches on disk, in `store`, for one model loaded one way (`stamp`)."""

    def __init__(self, store: CacheStore, model: Model, stamp: CacheStamp,
                 min_tokens: int = DEFAULT_MIN_TOKENS) -> None:
        self.store = store
        self.model = model
        self.stamp = stamp
        self.min_tokens = min_tokens

    def _ours(self) -> list[tuple[Path, CacheSummary]]:
        """The store's files this model may use, least recently used first."""
        found = ((path, self.store.summary(path)) for path in self.store.files())
        return [(path, summary) for path, summary in found if summary is not None and summary.stamp == self.stamp]

    def keep(self, entry: PooledCache, others: list[PooledCache]) -> bool:
        """Write `entry` (a server conversation's) unless it is short or `others` or a file
        already spare its history; remove the files it covers. True when it was written."""
        tokens, history = entry.cache.tokens, min(entry.history, len(entry.cache.tokens))
        if not entry.keep_on_disk or history < self.min_tokens or self.store.budget_bytes <= 0:
            return False
        if any(_spares(other.cache.reusable_prefix, tokens, history) for other in others):
            return False
        files = self._ours()
        if any(_spares(summary.reusable_prefix, tokens, history) for _, summary in files):
            return False
        try:
            written = self.store.save(_key(tokens), entry.cache, self.stamp, history)
        except OSError as error:  # a full disk costs a later prefill, not the reply
            _log.warning("a prompt cache of %d tokens was not written to %s: %s", len(tokens), self.store.folder, error)
            return False
        if written:
            for path, summary in files:
                if _spares(entry.cache.reusable_prefix, summary.tokens, summary.history):
                    path.unlink(missing_ok=True)
        return written

    def reload(self, prompt: list[int], held: int) -> tuple[PromptCache, int] | None:
        """The cache of the file that spares at least `min_tokens` more of `prompt` than the
        `held` tokens the pool spares, and its history; None without one."""
        spared, path, summary = max(((summary.reusable_prefix(prompt), path, summary) for path, summary in self._ours()),
                                    key=lambda found: found[0], default=(0, None, None))
        if path is None or spared < held + self.min_tokens:
            return None
        cache = self.store.load_file(path, self.model, self.stamp)[0]  # a refused file is logged and removed
        return None if cache is None else (cache, summary.history)
