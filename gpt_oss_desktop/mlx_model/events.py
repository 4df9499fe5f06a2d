"""The one vocabulary of events that flows up from generation to the terminal chat and the app.

The harmony stream parser emits the message-level events; the engine adds `Stats` and `Done`.
Every event is a small frozen dataclass so it can cross a thread boundary (Qt queued signals)
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class MessageStart:
    """A message header was read: from here on text deltas belong to this channel."""

    channel: str | None
    recipient: str | None
    content_type: str | None


@dataclass(frozen=True)
class TextDelta:
    """Decoded text of one or more generated tokens (never a partial UTF-8 character)."""

    channel: str | None
    text: str


@dataclass(frozen=True)
class MessageDone:
    """A message ended; `message` is in openai-harmony's `Message.to_dict()` form."""

    message: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The model addressed a tool (`recipient`, e.g. `functions.get_weather`).

    `arguments` is the parsed JSON, or None when `error` says why the text is not valid JSON;
    the raw text is always kept in `arguments_json`.
    """

    recipient: str
    arguments_json: str
    arguments: Any = None
    error: str | None = None
    channel: str | None = None
    content_type: str | None = None

    @property
    def name(self) -> str:
        """The function name without its namespace (`get_weather` for `functions.get_weather`)."""
        return self.recipient.split(".", 1)[1] if "." in self.recipient else self.recipient


@dataclass(frozen=True)
class ToolResult:
    """A tool answered the call to `recipient` (run by the tool loop, or refused by the user);
    `message` is the tool message added to the chat, `images` what it drew (mime, base64)."""

    recipient: str
    text: str
    seconds: float
    ok: bool
    message: dict[str, Any]
    images: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ParseWarning:
    """Malformed model output that the parser recovered from; `skipped` is the text it dropped."""

    what: str
    skipped: str = ""


@dataclass(frozen=True)
class Stats:
    """Figures for one reply."""

    prompt_tokens: int
    cached_tokens: int
    new_tokens: int
    ttft_s: float
    tokens_per_s: float
    peak_memory_bytes: int
    prefill_tokens_per_s: float = 0.0
    context_tokens: int = 0
    context_limit: int = 0
    dropped_messages: int = 0  # old messages left out of the prompt to fit the context
    expert_hit_rate: float | None = None  # share of this reply's expert uses found in memory; None: all resident
    chat_tokens: int = 0  # what the chat, this reply included, takes in the context for its next reply


@dataclass(frozen=True)
class ExpertPaging:
    """Expert lookups since the load when experts are paged from disk: how many were found in
    memory, how many were read, and the bytes read (what the app's status bar shows)."""

    hits: int = 0
    misses: int = 0
    bytes_read: int = 0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 1.0

    def since(self, before: "ExpertPaging") -> "ExpertPaging":
        """The lookups after `before` was taken."""
        return ExpertPaging(self.hits - before.hits, self.misses - before.misses, self.bytes_read - before.bytes_read)


DoneReason = Literal["return", "call", "max_tokens", "cancelled", "context_full", "error"]


@dataclass(frozen=True)
class Done:
    """The reply ended; `detail` explains `context_full` and `error`."""

    reason: DoneReason
    detail: str = ""
    messages: tuple[dict[str, Any], ...] = field(default_factory=tuple)


Event = MessageStart | TextDelta | MessageDone | ToolCall | ToolResult | ParseWarning | Stats | Done
