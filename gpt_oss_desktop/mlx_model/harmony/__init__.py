"""The harmony chat format of gpt-oss on tiktoken, token-identical with openai-harmony.

Conversations are lists of openai-harmony message dicts (`Message.to_dict()`); openai-harmony
itself is only a test dependency.
"""

from .messages import (
    CHANNELS,
    DEFAULT_KNOWLEDGE_CUTOFF,
    DEFAULT_MODEL_IDENTITY,
    INCOMPLETE,
    INCOMPLETE_NOTE,
    MessageDict,
    ReasoningLevel,
    assistant_message,
    developer_message,
    is_incomplete,
    system_message,
    text_of,
    tool_result_message,
    user_message,
)
from .parser import HarmonyParseError, ParserEvent, StopReason, StreamParser, parse_completion
from .render import drop_completed_chain_of_thought, render_for_completion, render_message

__all__ = [
    "CHANNELS",
    "DEFAULT_KNOWLEDGE_CUTOFF",
    "DEFAULT_MODEL_IDENTITY",
    "HarmonyParseError",
    "INCOMPLETE",
    "INCOMPLETE_NOTE",
    "MessageDict",
    "ParserEvent",
    "ReasoningLevel",
    "StopReason",
    "StreamParser",
    "assistant_message",
    "developer_message",
    "drop_completed_chain_of_thought",
    "is_incomplete",
    "parse_completion",
    "render_for_completion",
    "render_message",
    "system_message",
    "text_of",
    "tool_result_message",
    "user_message",
]
