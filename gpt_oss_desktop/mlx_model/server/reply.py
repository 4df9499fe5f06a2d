"""The engine's harmony events read as the pieces both APIs report: reasoning (the analysis
channel), visible text (final, or a commentary preamble) and function calls (a message with a
recipient). Harmony markup never reaches a client: only the text inside messages does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..events import Done, Event, MessageDone, MessageStart, Stats, TextDelta

PartKind = Literal["reasoning", "text", "call"]
FUNCTIONS_PREFIX = "functions."


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass
class Part:
    """One harmony message of the reply, as it streams."""

    index: int
    kind: PartKind
    channel: str | None
    recipient: str | None = None
    content_type: str | None = None
    text: str = ""
    call_id: str | None = None
    finished: bool = False

    @property
    def name(self) -> str:
        """A call's function name: `get_weather` for `functions.get_weather`; other recipients
        (`browser.search` when no tool runs here) are reported under their full name."""
        recipient = self.recipient or ""
        return recipient[len(FUNCTIONS_PREFIX):] if recipient.startswith(FUNCTIONS_PREFIX) else recipient


@dataclass(frozen=True)
class PartStarted:
    part: Part


@dataclass(frozen=True)
class PartDelta:
    part: Part
    text: str


@dataclass(frozen=True)
class PartDone:
    part: Part


PartEvent = PartStarted | PartDelta | PartDone


class ReplyReader:
    """Feed engine events; get part events, and at the end the stats and why the reply ended."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.stats: Stats | None = None
        self.done: Done | None = None
        self._open: Part | None = None

    def feed(self, event: Event) -> list[PartEvent]:
        if isinstance(event, MessageStart):
            self._open = Part(len(self.parts), _kind(event), event.channel, event.recipient, event.content_type,
                              call_id=new_id("call") if event.recipient else None)
            self.parts.append(self._open)
            return [PartStarted(self._open)]
        if isinstance(event, TextDelta) and self._open is not None:
            self._open.text += event.text
            return [PartDelta(self._open, event.text)]
        if isinstance(event, MessageDone) and self._open is not None:
            part, self._open = self._open, None
            part.finished = True
            return [PartDone(part)]
        if isinstance(event, Stats):
            self.stats = event
        elif isinstance(event, Done):
            self.done = event
        return []

    @property
    def reasoning(self) -> str:
        return "".join(part.text for part in self.parts if part.kind == "reasoning")

    @property
    def visible_text(self) -> str:
        return "".join(part.text for part in self.parts if part.kind == "text")

    def reasoning_tokens(self, count_tokens: Callable[[str], int]) -> int:
        """Tokens spent on the chain of thought (its text re-encoded: the parser keeps text, not
        ids), never more than were generated."""
        total = sum(count_tokens(part.text) for part in self.parts if part.kind == "reasoning")
        return min(total, self.stats.new_tokens if self.stats else total)

    @property
    def calls(self) -> list[Part]:
        return [part for part in self.parts if part.kind == "call"]


def _kind(start: MessageStart) -> PartKind:
    if start.recipient is not None and start.recipient != "all":
        return "call"
    return "reasoning" if start.channel == "analysis" else "text"
