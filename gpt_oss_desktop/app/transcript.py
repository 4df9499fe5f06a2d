"""Stored messages ↔ the engine's harmony message dicts, and stored messages → the turns the
chat view and the reasoning panel show.

The one place where the storage layout meets the harmony format: the engine's `mlx_model.Chat` is
built by `chat_for(...)`, the one builder of harmony messages from stored ones, and what the
engine reports back is stored through `stored_fields(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gpt_oss_desktop.mlx_model import (
    INCOMPLETE,
    Chat,
    assistant_message,
    text_of,
    tool_result_message,
    user_message,
)

from .store import ConversationRecord, MessageRecord

TITLE_LENGTH = 48


def harmony_messages(records: list[MessageRecord]) -> list[dict[str, Any]]:
    """The chat in openai-harmony `Message.to_dict()` form. An assistant message's reasoning
    becomes the analysis message before it; leaving out analysis after a final answer is the
    renderer's job, as harmony specifies. A reply stopped while the model was still thinking
    (reasoning and nothing else) is left out: a dangling thought is not given back to it. The
    last message of a reply that did not end complete (stopped, cut at the length limit, killed,
    failed) is marked incomplete, so the model is told it was cut (see mlx_model's INCOMPLETE)."""
    messages: list[dict[str, Any]] = []
    cut = {turn.records[-1].id for turn in group_turns(records) if turn.role == "assistant" and turn.status != "complete"}
    for record in records:
        if record.role == "user":
            messages.append(user_message(record.content))
        elif record.role == "tool":  # stored as it answered: authored by the tool, to the assistant
            messages.append(tool_result_message(record.author_name, record.content, record.channel or "commentary"))
        elif record.content or record.recipient:
            if record.reasoning:
                messages.append(assistant_message(record.reasoning, channel="analysis"))
            message = assistant_message(record.content, channel=record.channel or "final",
                                        recipient=record.recipient, content_type=record.content_type)
            if record.id in cut:
                message["status"] = INCOMPLETE
            messages.append(message)
    return messages


def chat_for(conversation: ConversationRecord, records: list[MessageRecord]) -> Chat:
    """The engine's chat for a stored conversation (the reasoning level is stored per chat)."""
    return Chat(
        messages=harmony_messages(records),
        reasoning_level=conversation.reasoning_level,
        instructions=conversation.developer_instructions or None,
        tools=[],
        start_date=conversation.start_date,
    )


def stored_fields(message: dict[str, Any]) -> dict[str, Any]:
    """The message columns a finished harmony message (from the engine) sets."""
    return {
        "channel": message.get("channel"),
        "recipient": message.get("recipient"),
        "content_type": message.get("content_type"),
        "content": text_of(message),
    }


def title_from_text(text: str) -> str:
    """A chat's title from its first message: the first line, cut at a word near 48 characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut.rstrip(",.;:") + "…"


@dataclass
class Turn:
    """What the chat shows as one bubble: a user message, or every assistant and tool message
    between two user messages (reasoning, tool calls, tool results and the answer)."""

    role: str
    records: list[MessageRecord] = field(default_factory=list)
    # Kept versions of this turn and what follows it: (the shown one's number, how many), and
    # the message they follow (None: the chat's start); see Store.versions.
    versions: tuple[int, int] | None = None
    version_after: int | None = None

    @property
    def first_id(self) -> int:
        return self.records[0].id

    @property
    def position(self) -> int:
        return self.records[0].position

    @property
    def text(self) -> str:
        """The visible text: the user's words, or the assistant's answers and preambles."""
        if self.role == "user":
            return self.records[0].content
        return "\n\n".join(r.content for r in self.records if r.role == "assistant" and not r.recipient and r.content)

    @property
    def thought_seconds(self) -> float:
        return sum(r.thought_seconds or 0.0 for r in self.records)

    @property
    def has_reasoning(self) -> bool:
        return any(r.reasoning or r.recipient or r.role == "tool" for r in self.records)

    @property
    def reasoning_level(self) -> str | None:
        return next((r.reasoning_level for r in self.records if r.reasoning_level), None)

    @property
    def status(self) -> str:
        """The last message's status: how the reply ended."""
        return self.records[-1].status

    @property
    def detail(self) -> str | None:
        return next((r.detail for r in reversed(self.records) if r.detail), None)

    @property
    def stats(self) -> dict[str, Any] | None:
        return next((r.stats for r in reversed(self.records) if r.stats and r.role != "tool"), None)

    @property
    def citations(self) -> list[dict[str, Any]]:
        """The sources the answers cite (resolved when the reply ended)."""
        return [c for r in self.records if r.role == "assistant" for c in (r.attachments or {}).get("citations", [])]

    @property
    def images(self) -> list[tuple[str, str]]:
        """What the tools drew (python's display data) as (mime type, base64), in order."""
        return [(mime, data) for r in self.records if r.role == "tool"
                for mime, data in (r.attachments or {}).get("images", [])]


def group_turns(records: list[MessageRecord], versions: dict[int | None, tuple[int, int]] | None = None) -> list[Turn]:
    """Stored messages as turns; `versions` (Store.versions) marks the turns that have kept
    versions (a version begins at a turn: the reply regenerated, the message edited)."""
    turns: list[Turn] = []
    for record in records:
        if record.role == "user" or not turns or turns[-1].role == "user":
            turns.append(Turn("user" if record.role == "user" else "assistant"))
        turns[-1].records.append(record)
    for index, turn in enumerate(turns):
        after = turns[index - 1].records[-1].id if index else None
        if versions and after in versions:
            turn.versions, turn.version_after = versions[after], after
    return turns
