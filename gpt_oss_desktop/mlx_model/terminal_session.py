"""A named terminal chat (`gpt-oss-chat --session NAME`): its messages in
<data>/terminal-sessions/NAME.json, written atomically after every reply so a kill loses nothing,
and its prompt cache in <data>/prompt-caches (cache_file.CacheStore), so running it again
continues the chat and prefills only the new message."""

from __future__ import annotations

import json
import os
import re

from . import paths
from .cache_file import CacheStore
from .chat import Chat
from .units import GIB

CACHE_DISK_BUDGET_BYTES = 8 * GIB
"""Disk the saved prompt caches may take (20b: about 24 KiB a token, so some 350k tokens of chats)."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def cache_store() -> CacheStore:
    return CacheStore(paths.data_dir() / "prompt-caches", CACHE_DISK_BUDGET_BYTES)


class TerminalSession:
    def __init__(self, name: str) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"--session {name!r}: use letters, digits, '.', '_' or '-' (up to 64), starting with a "
                             "letter or digit")
        self.name = name
        self.path = paths.data_dir() / "terminal-sessions" / f"{name}.json"
        self.cache_key = f"terminal-session:{name}"

    def load(self, fresh: Chat) -> Chat:
        """The saved chat, or `fresh` (the command line's settings) for a new session."""
        if not self.path.is_file():
            return fresh
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            return Chat(messages=list(saved["messages"]), reasoning_level=saved["reasoning_level"],
                        instructions=saved.get("instructions"), start_date=saved["start_date"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{self.path}: not a readable terminal session ({error})") from None

    def save(self, chat: Chat) -> None:
        data = {"messages": chat.messages, "reasoning_level": chat.reasoning_level,
                "instructions": chat.instructions, "start_date": chat.start_date}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as file:
            json.dump(data, file, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
