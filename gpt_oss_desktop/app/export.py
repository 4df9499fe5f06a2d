"""A chat as a Markdown document (to read or share) or as JSON (the harmony messages the model
saw, plus the metadata the app keeps)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from .store import ConversationRecord, MessageRecord
from .transcript import group_turns, harmony_messages

JSON_FORMAT = "gpt-oss-desktop/chat"
JSON_VERSION = 1
ASSISTANT_NAME = "gpt-oss"
STATUS_MARKS = {"cancelled": "Stopped", "interrupted": "Interrupted", "failed": "Failed", "streaming": "Unfinished"}
"""How a reply that did not finish is marked, as the chat view marks it."""


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _fence(text: str, language: str = "") -> str:
    """A code fence longer than any run of backticks inside `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def chat_markdown(conversation: ConversationRecord, records: list[MessageRecord]) -> str:
    lines = [f"# {conversation.title}", ""]
    facts = [f"Model: {conversation.model}" if conversation.model else None,
             f"Reasoning: {conversation.reasoning_level}", f"Started: {conversation.start_date}"]
    lines += ["*" + " · ".join(fact for fact in facts if fact) + "*", ""]
    if conversation.developer_instructions:
        quoted = ("> " + line for line in conversation.developer_instructions.splitlines())
        lines += ["**Developer instructions**", "", *quoted, ""]
    for turn in group_turns(records):
        if turn.role == "user":
            lines += ["## You", "", turn.text, ""]
            continue
        heading = f"## {ASSISTANT_NAME}"
        if turn.reasoning_level:
            heading += f" ({turn.reasoning_level} reasoning)"
        lines += [heading, ""]
        for record in turn.records:
            if record.reasoning:
                summary = "Reasoning (unfiltered model reasoning"
                summary += f", {record.thought_seconds:.1f} s)" if record.thought_seconds else ")"
                lines += ["<details>", f"<summary>{summary}</summary>", "", record.reasoning, "", "</details>", ""]
            if record.role == "tool":
                lines += [f"**Tool result** from `{record.author_name}`", "", _fence(record.content), ""]
            elif record.recipient:
                lines += [f"**Tool call** to `{record.recipient}`", "", _fence(record.content, "json"), ""]
            elif record.content:
                lines += [record.content, ""]
        if turn.status != "complete":
            mark = STATUS_MARKS.get(turn.status, turn.status.capitalize())
            lines += [f"*{mark}: {turn.detail}*" if turn.detail else f"*{mark}.*", ""]
    return "\n".join(lines).rstrip() + "\n"


def chat_json(conversation: ConversationRecord, records: list[MessageRecord]) -> str:
    document: dict[str, Any] = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "title": conversation.title,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "model": conversation.model,
        "reasoning_level": conversation.reasoning_level,
        "start_date": conversation.start_date,
        "developer_instructions": conversation.developer_instructions,
        "messages": harmony_messages(records),
        "records": [
            {
                "position": record.position,
                "role": record.role,
                "channel": record.channel,
                "recipient": record.recipient,
                "status": record.status,
                "detail": record.detail,
                "reasoning_level": record.reasoning_level,
                "started_at": _iso(record.started_at),
                "thought_seconds": record.thought_seconds,
                "stats": record.stats,
            }
            for record in records
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
