"""The engine's harmony events read as the pieces both APIs report: reasoning (the analysis
channel), visible text (final, or a commentary preamble), function calls (a message with a
recipient) and calls to the tools the server runs itself (`--tools`: browser, python, MCP),
which are answered within the same reply. Harmony markup never reaches a client: only the
text inside messages does."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..events import Done, Event, MessageDone, MessageStart, Stats, TextDelta, ToolResult

PartKind = Literal["reasoning", "text", "call", "hosted"]
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
    result: ToolResult | None = None  # a hosted call's answer, once the tool has run
    call_message: dict | None = None  # a hosted call as the engine parsed it (harmony message dict)

    @property
    def round_messages(self) -> list[dict]:
        """A hosted call and its answer as harmony messages, for rendering the turn again."""
        return [self.call_message, self.result.message] if self.call_message and self.result else []

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


@dataclass(frozen=True)
class PartAnswered:
    """A hosted call's tool has run (`part.result`)."""

    part: Part


PartEvent = PartStarted | PartDelta | PartDone | PartAnswered


def _added(total: Stats, more: Stats) -> Stats:
    """The figures of a reply that took several model calls (one per tool round)."""
    return dataclasses.replace(more, prompt_tokens=total.prompt_tokens + more.prompt_tokens,
                               cached_tokens=total.cached_tokens + more.cached_tokens,
                               new_tokens=total.new_tokens + more.new_tokens, ttft_s=total.ttft_s)


class ReplyReader:
    """Feed engine events; get part events, and at the end the stats (summed over tool rounds)
    and why the reply ended. `hosted` says which recipients the server's own tools answer."""

    def __init__(self, hosted: Callable[[str], bool] = lambda recipient: False) -> None:
        self._hosted = hosted
        self.parts: list[Part] = []
        self.stats: Stats | None = None
        self.done: Done | None = None
        self._open: Part | None = None

    def feed(self, event: Event) -> list[PartEvent]:
        if isinstance(event, MessageStart):
            kind = _kind(event)
            if kind == "call" and self._hosted(event.recipient):
                kind = "hosted"
            self._open = Part(len(self.parts), kind, event.channel, event.recipient, event.content_type,
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
        if isinstance(event, ToolResult):
            part = next((p for p in reversed(self.parts) if p.kind == "hosted" and p.result is None), None)
            if part is not None:
                part.result = event
                return [PartAnswered(part)]
        elif isinstance(event, Stats):
            self.stats = event if self.stats is None else _added(self.stats, event)
        elif isinstance(event, Done):
            self.done = event
            calls = [m for m in event.messages if m.get("recipient")]
            hosted = [p for p in self.parts if p.kind == "hosted" and p.call_message is None]
            if event.reason == "call" and calls and hosted:
                hosted[-1].call_message = calls[-1]
        return []

    @property
    def tool_rounds(self) -> list[dict]:
        """Every hosted call answered in this reply, with its answer, in order."""
        return [message for part in self.parts for message in part.round_messages]

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
