"""The model is told the format as well as held to it: the `# Response Formats` section goes at
the end of the developer message, as harmony's format guide places it."""

from __future__ import annotations

from typing import Any

from ..harmony import developer_message
from .formats import ResponseFormat, response_formats_section


def with_response_format(header: list[dict[str, Any]], response_format: ResponseFormat | None) -> list[dict[str, Any]]:
    """The system and developer messages with the section appended (a developer message is
    added when there is none). The section is its own text item after the developer content,
    joined by a blank line, so openai-harmony renders the same message token for token."""
    section = response_formats_section(response_format) if response_format else None
    if section is None:
        return header
    messages = [dict(message) for message in header]
    developer = next((m for m in messages if m.get("role") == "developer"), None)
    if developer is None:
        developer = developer_message()
        developer["content"] = []
        messages.append(developer)
    content = list(developer["content"])
    content.append({"type": "text", "text": f"\n\n{section}" if content else section})
    developer["content"] = content
    return messages
