"""A python kernel per conversation for the server's hosted python tool, so one client's
variables and files are never another's.

Neither API names a conversation, so one is known by what it sends again. Its user messages come
back byte for byte (a Responses chain holds them in its stored input, a Chat Completions client in
`messages`): a request continues a conversation whose user messages it extends by one new message,
or equals while going on after its last one (a tool's result, the client's function output); a
lone opening message starts a conversation of its own, even when another client opened with the
same words. Among conversations it could continue, the one sharing the longest run of leading
messages with it wins (the most recent on a tie): two clients whose transcripts are identical so far
cannot be told apart. At most `capacity` kernels are kept, the least recently used shut down (and
its folder removed) first; a kernel a reply still holds is never shut down under it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..chat import Chat

if TYPE_CHECKING:  # the kernel's Jupyter libraries load only when a server runs python
    from ..tools.python_kernel import PythonKernel

DEFAULT_CAPACITY = 4


@dataclass(eq=False)
class ConversationKernel:
    """One conversation's kernel, its messages seen so far (hashed; the user messages apart), the
    chat of the last reply that held it and how many replies hold it now."""

    kernel: PythonKernel
    chat: Chat
    user_turns: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    holders: int = field(default=0)

    def remember(self) -> None:
        """What the held chat holds now (a reply adds its tool calls and their results)."""
        self.user_turns, self.messages = user_turns(self.chat), message_hashes(self.chat)


def _hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def user_turns(chat: Chat) -> tuple[str, ...]:
    """The conversation's user messages, each hashed (content only: both APIs render it alike)."""
    return tuple(_hash(message.get("content")) for message in chat.messages if message.get("role") == "user")


def message_hashes(chat: Chat) -> tuple[str, ...]:
    return tuple(_hash(message) for message in chat.messages)


def _shared_lead(seen: tuple[str, ...], messages: tuple[str, ...]) -> int:
    """How many leading messages two conversations have in common."""
    count = 0
    for a, b in zip(seen, messages):
        if a != b:
            break
        count += 1
    return count


def _goes_on_after_last_user(chat: Chat) -> bool:
    roles = [message.get("role") for message in chat.messages]
    return "user" in roles and roles[-1] != "user"


def _continues(seen: tuple[str, ...], turns: tuple[str, ...], same_turn: bool) -> bool:
    """Whether a request with user messages `turns` goes on from a conversation that has seen
    `seen`: one new user message, or the same ones while the turn goes on (or is asked again after
    the first turn; a lone opening message asked again is taken for someone else's)."""
    if len(turns) > 1 and seen == turns[:-1]:
        return True
    return bool(turns) and seen == turns and (same_turn or len(turns) > 1)


class ConversationKernels:
    """The kernels of the conversations a server's python tool has run code for, an LRU;
    `make(folder)` builds a (not yet started) kernel working in `folder`."""

    def __init__(self, folder: Path, make: Callable[[Path], PythonKernel], capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"a server keeps at least one python kernel, not {capacity}")
        self.folder, self._make, self.capacity = folder, make, capacity
        self._entries: list[ConversationKernel] = []  # least recently used first
        self._lock = threading.Lock()

    def hold(self, chat: Chat) -> ConversationKernel:
        """The kernel of `chat`'s conversation (a new one when it continues none), held until
        `release`; evicts the least recently used kernels nobody holds beyond the capacity."""
        turns, messages, same_turn = user_turns(chat), message_hashes(chat), _goes_on_after_last_user(chat)
        with self._lock:
            candidates = [e for e in reversed(self._entries) if _continues(e.user_turns, turns, same_turn)]
            if candidates:
                entry = max(candidates, key=lambda e: _shared_lead(e.messages, messages))  # the first on a tie
                self._entries.remove(entry)
                entry.chat = chat
            else:
                entry = ConversationKernel(self._make(self.folder / uuid.uuid4().hex), chat)
            entry.remember()
            entry.holders += 1
            self._entries.append(entry)
            evicted = self._evictable()
        for old in evicted:
            _shut_down(old.kernel)
        return entry

    def release(self, entry: ConversationKernel) -> None:
        """The reply holding `entry` has ended; a kernel it never started holds nothing worth a
        place in the LRU (the conversation's next python call starts one)."""
        with self._lock:
            entry.remember()
            entry.holders -= 1
            if entry.holders == 0 and not entry.kernel.started:
                self._entries.remove(entry)
            evicted = self._evictable()
        for old in evicted:
            _shut_down(old.kernel)

    def _evictable(self) -> list[ConversationKernel]:
        """Take out the least recently used kernels nobody holds while more than `capacity` are kept."""
        evicted = []
        for entry in list(self._entries):
            if len(self._entries) <= self.capacity:
                break
            if entry.holders == 0:
                self._entries.remove(entry)
                evicted.append(entry)
        return evicted

    @property
    def kernels(self) -> list[PythonKernel]:
        """The kept kernels, least recently used first."""
        with self._lock:
            return [entry.kernel for entry in self._entries]

    def close(self) -> None:
        """Shut every kernel down and remove its folder (at server shutdown)."""
        with self._lock:
            entries, self._entries = self._entries, []
        for entry in entries:
            _shut_down(entry.kernel)


def _shut_down(kernel: PythonKernel) -> None:
    kernel.close()
    shutil.rmtree(kernel.work, ignore_errors=True)  # the conversation's files go with its variables
