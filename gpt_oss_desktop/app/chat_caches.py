"""The chats' prompt caches on disk, so a long chat reopened after quitting answers after
prefilling only its new message (the engine's `save_prompt_cache` / `restore_prompt_cache`).

The engine keeps several chats' caches in memory; that memory is gone when the app quits or the
model is loaded again, and a chat left for others may be pushed out of it. So a chat's cache is
written when the chat is left (another chat opened, the app quit, another model loaded), and
only when a reply changed it since it was last written; it is read back before the chat's next
reply when the engine does not already hold as much of it. The files live in
<data folder>/chat-caches within the disk budget of Settings › Memory, least recently used out.

The local server's conversations have no ids: their caches go to the server's folder under the
tokens they hold (`Engine.spill_prompt_caches`, as gpt-oss-serve keeps them, so either continues
what the other left), within the same budget, and are written at the same moments.

This runs on the engine thread (the caches' arrays belong to it): `EngineWorker` owns one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gpt_oss_desktop.mlx_model import GIB, CacheStore, Chat, server_cache_dir

from . import paths

log = logging.getLogger(__name__)

FOLDER_NAME = "chat-caches"
DEFAULT_BUDGET_GIB = 4.0
"""Some 170k tokens of gpt-oss-20b chats (about 24 KiB a token at 16 bits), 110k of 120b."""
DEFAULT_BUDGET_BYTES = int(DEFAULT_BUDGET_GIB * GIB)


def cache_key(conversation_id: int) -> str:
    return f"app-chat:{conversation_id}"


class ChatCaches:
    """Which chats' caches changed since they were written, and the store that writes them."""

    def __init__(self, budget_bytes: int, folder: Path | None = None) -> None:
        self._budget_bytes = budget_bytes
        self._folder = folder  # None: <data folder>/chat-caches, looked up when first used
        self._changed: dict[int, Chat] = {}  # conversation id → the chat as its last reply left it
        self._server_store: CacheStore | None = None  # the loaded engine's, for the local server

    @property
    def budget_bytes(self) -> int:
        return self._budget_bytes

    @budget_bytes.setter
    def budget_bytes(self, value: int) -> None:
        self._budget_bytes = value
        if self._server_store is not None:
            self._server_store.budget_bytes = value

    def attach(self, engine: Any) -> None:
        """A model was loaded: the local server's caches it drops go to the server's folder."""
        self._server_store = CacheStore(server_cache_dir(), self.budget_bytes)
        engine.spill_prompt_caches(self._server_store)

    @property
    def store(self) -> CacheStore:
        return CacheStore(self._folder or paths.data_dir() / FOLDER_NAME, self.budget_bytes)

    def restore(self, engine: Any, conversation_id: int, chat: Chat) -> str | None:
        """Read the chat's saved cache into the engine when it holds less of `chat` (as the
        reply will render it: tools declared); a note when a file was refused."""
        try:
            return engine.restore_prompt_cache(self.store, cache_key(conversation_id), chat)
        except OSError as error:  # an unreadable folder: the chat is read afresh
            log.warning("chat %d: could not read its prompt cache: %s", conversation_id, error)
            return f"The chat's saved prompt cache could not be read, so the chat is read again: {error}"

    def replied(self, conversation_id: int, chat: Chat) -> None:
        """A reply changed the chat's cache: write it when the chat is left."""
        self._changed[conversation_id] = chat

    def save(self, engine: Any, conversation_id: int) -> None:
        """Write the chat's cache if a reply changed it since it was last written."""
        chat = self._changed.pop(conversation_id, None)
        if chat is None or engine is None or not self.budget_bytes:
            return
        try:
            if not engine.save_prompt_cache(self.store, cache_key(conversation_id), chat):
                log.info("chat %d: its prompt cache was not kept (the engine no longer holds it, or it alone "
                         "exceeds the disk budget of %d bytes)", conversation_id, self.budget_bytes)
        except OSError as error:  # a full disk: the chat is safe in the store, only its cache is lost
            log.warning("chat %d: could not write its prompt cache: %s", conversation_id, error)

    def save_all(self, engine: Any) -> None:
        """Write every changed cache and the local server's (on quit, and before another model
        is loaded); one that fails is logged and the rest are still written."""
        if engine is not None:
            try:
                engine.save_spilled_caches()
            except Exception:
                log.exception("the local server's prompt caches could not be written")
        for conversation_id in list(self._changed):
            try:
                self.save(engine, conversation_id)
            except Exception:
                log.exception("chat %d: could not write its prompt cache", conversation_id)

    def discard(self, conversation_id: int) -> None:
        """The chat was deleted: its cache goes with it."""
        self._changed.pop(conversation_id, None)
        self.store.discard(cache_key(conversation_id))
