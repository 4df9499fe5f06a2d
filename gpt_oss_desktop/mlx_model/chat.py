"""A chat as the engine renders it: harmony messages plus the settings that make up the system
and developer messages (reasoning level, start date, instructions, function tools).

Named `Chat`, not Conversation: openai-harmony's `Conversation` is a bare list of messages, this
also carries what the header messages are built from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

from .harmony import ReasoningLevel, developer_message, system_message, tool_result_message, user_message

REASONING_LEVELS: tuple[ReasoningLevel, ...] = get_args(ReasoningLevel)


@dataclass
class Chat:
    """`messages` are openai-harmony `Message.to_dict()` dicts: user, assistant (analysis,
    commentary, final; tool calls with a recipient) and tool results; never system or developer,
    which are built from the other fields on every render."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    reasoning_level: ReasoningLevel = "medium"
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    # The built-in tools the system message declares: "browser", "python" (see mlx_model.tools).
    builtin_tools: tuple[str, ...] = ()
    # Stored per chat (YYYY-MM-DD) so the system message, and so the cached prompt, stays
    # byte-stable across days.
    start_date: str | None = None

    def __post_init__(self) -> None:
        if self.reasoning_level not in REASONING_LEVELS:
            raise ValueError(f"reasoning_level must be one of {REASONING_LEVELS}, got {self.reasoning_level!r}")
        unknown = set(self.builtin_tools) - {"browser", "python"}
        if unknown:
            raise ValueError(f"builtin_tools may hold 'browser' and 'python', not {sorted(unknown)}")

    def add_user(self, text: str) -> None:
        self.messages.append(user_message(text))

    def add_tool_result(self, recipient: str, content: str, channel: str = "commentary") -> None:
        """The result of a tool the model called, authored by the tool (`functions.NAME`)."""
        self.messages.append(tool_result_message(recipient, content, channel=channel))

    def header_messages(self) -> list[dict[str, Any]]:
        """The system message and, when there are instructions or tools, the developer message."""
        header = [system_message(reasoning_level=self.reasoning_level, start_date=self.start_date,
                                 browser="browser" in self.builtin_tools, python="python" in self.builtin_tools)]
        if self.instructions or self.tools:
            header.append(developer_message(instructions=self.instructions, tools=self.tools or None))
        return header

    def harmony_messages(self) -> list[dict[str, Any]]:
        return self.header_messages() + self.messages
