"""Conversation messages as openai-harmony's JSON dicts, and builders for them.

A message is what `openai_harmony.Message.to_dict()` writes and `Message.from_dict()` reads:
`{"role", "name", "content": [items], "channel"?, "recipient"?, "content_type"?}` with content
items of type `text`, `system_content` or `developer_content`. Conversations therefore pass
between this project and the official library unchanged, and openai-harmony is not needed to
build them.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Literal

from .builtin_tools import BROWSER_NAMESPACE, PYTHON_NAMESPACE

MessageDict = dict[str, Any]
ReasoningLevel = Literal["low", "medium", "high"]

ROLES = ("user", "assistant", "system", "developer", "tool")
CHANNELS = ("analysis", "commentary", "final")
DEFAULT_MODEL_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
DEFAULT_KNOWLEDGE_CUTOFF = "2024-06"

INCOMPLETE = "incomplete"
"""The `status` of a message cut short (stopped, a token limit, the app killed mid-reply), as the
Responses API marks a cut output item; openai-harmony's `Message.from_dict` ignores the key."""
INCOMPLETE_NOTE = "\n\n[This reply was stopped here, before it was finished.]"
"""What an incomplete message's text is followed by when it is given back to the model: harmony
has no unterminated message mid-conversation, so the cut is said in words (see render.py)."""

_EFFORT_VALUES = {"low": "Low", "medium": "Medium", "high": "High"}
"""Reasoning level → the value openai-harmony's ReasoningEffort serialises to."""


def plain(value: Any) -> Any:
    """A field's plain value: openai-harmony's `to_dict()` leaves str Enums (Role, ...) in."""
    return value.value if isinstance(value, Enum) else value


def is_incomplete(message: Mapping[str, Any]) -> bool:
    """Whether a message was cut short before its end (see INCOMPLETE)."""
    return message.get("status") == INCOMPLETE


def text_of(message: Mapping[str, Any]) -> str:
    """The concatenated text items of a message (its whole content for parsed messages)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(item["text"] for item in content or () if plain(item.get("type")) == "text")


def _message(
    role: str,
    content: Sequence[Mapping[str, Any]],
    *,
    name: str | None = None,
    channel: str | None = None,
    recipient: str | None = None,
    content_type: str | None = None,
) -> MessageDict:
    message: MessageDict = {"role": role, "name": name, "content": [dict(item) for item in content]}
    for key, value in (
        ("channel", channel),
        ("recipient", recipient),
        ("content_type", content_type),
    ):
        if value is not None:
            message[key] = value
    return message


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def system_message(
    reasoning_level: ReasoningLevel = "medium",
    start_date: str | datetime.date | None = None,
    model_identity: str | None = DEFAULT_MODEL_IDENTITY,
    knowledge_cutoff: str | None = DEFAULT_KNOWLEDGE_CUTOFF,
    browser: bool = False,
    python: bool = False,
) -> MessageDict:
    """The system message gpt-oss expects: identity, dates, reasoning level, built-in tools.

    The three channels are always required, as openai-harmony's default system content does.
    """
    if reasoning_level not in _EFFORT_VALUES:
        raise ValueError(f"reasoning_level must be one of {sorted(_EFFORT_VALUES)}, not {reasoning_level!r}")
    if isinstance(start_date, datetime.date):
        start_date = start_date.isoformat()
    tools = {
        namespace["name"]: namespace
        for namespace, wanted in ((BROWSER_NAMESPACE, browser), (PYTHON_NAMESPACE, python))
        if wanted
    }
    content: dict[str, Any] = {
        "model_identity": model_identity,
        "reasoning_effort": _EFFORT_VALUES[reasoning_level],
        "conversation_start_date": start_date,
        "knowledge_cutoff": knowledge_cutoff,
        "channel_config": {"valid_channels": list(CHANNELS), "channel_required": True},
        "tools": tools or None,
    }
    item = {key: value for key, value in content.items() if value is not None}
    return _message("system", [{**item, "type": "system_content"}])


def developer_message(
    instructions: str | None = None, tools: Sequence[Mapping[str, Any]] | None = None
) -> MessageDict:
    """Instructions and function tools (`{"name", "description", "parameters"}` JSON Schema).

    The tools become the `functions` namespace, which the model calls on the commentary channel.
    """
    content: dict[str, Any] = {}
    if instructions is not None:
        content["instructions"] = instructions
    if tools:
        content["tools"] = {
            "functions": {"name": "functions", "tools": [_tool_description(t) for t in tools]}
        }
    return _message("developer", [{**content, "type": "developer_content"}])


def _tool_description(tool: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str) or not isinstance(tool.get("description"), str):
        raise ValueError(f"a function tool needs a string name and description, got {dict(tool)!r}")
    description = {"name": tool["name"], "description": tool["description"]}
    if tool.get("parameters") is not None:
        description["parameters"] = tool["parameters"]
    return description


def user_message(text: str, name: str | None = None) -> MessageDict:
    return _message("user", [_text(text)], name=name)


def assistant_message(
    text: str,
    channel: str = "final",
    recipient: str | None = None,
    content_type: str | None = None,
) -> MessageDict:
    """An assistant message for history; with a recipient it is a tool call (ends in `<|call|>`)."""
    return _message(
        "assistant", [_text(text)], channel=channel, recipient=recipient, content_type=content_type
    )


def tool_result_message(recipient: str, content: str, channel: str = "commentary") -> MessageDict:
    """A tool's answer to the call addressed to `recipient` (e.g. `functions.get_weather`).

    The tool authors it under that name, addressed back to the assistant, on the call's channel
    (function tools answer on commentary, browser and python usually on analysis).
    """
    return _message(
        "tool", [_text(content)], name=recipient, channel=channel, recipient="assistant"
    )
