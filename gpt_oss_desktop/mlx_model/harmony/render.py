"""Harmony rendering of openai-harmony message dicts into o200k_harmony token ids.

Token-identical with openai-harmony's `render_conversation_for_completion(convo, Role.ASSISTANT)`:
each header field and content item is encoded as ordinary text on its own (so user text can never
become a special token), and the chain of thought is dropped by the library's own rule (see
`_library_analysis_cutoff`). A field missing from a dict is absent, as for the library's renderer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..tokenizer import Tokenizer, load_tokenizer
from .messages import INCOMPLETE_NOTE, ROLES, is_incomplete, plain
from .tool_schema import tools_section

CONSTRAIN = "<|constrain|>"

_EFFORT_WORDS = {"Low": "low", "Medium": "medium", "High": "high"}


def render_for_completion(
    messages: Sequence[Mapping[str, Any]], tokenizer: Tokenizer | None = None
) -> list[int]:
    """The prompt for the assistant's next turn: the conversation, then `<|start|>assistant`."""
    tokenizer = tokenizer or load_tokenizer(None)
    functions = has_function_tools(messages)
    cutoff = _library_analysis_cutoff(messages)
    tokens: list[int] = []
    for index, message in enumerate(messages):
        if index < cutoff and message.get("channel") == "analysis":
            continue
        try:
            tokens += render_message(message, tokenizer, has_function_tools=functions)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"message {index} cannot be rendered: {exc}") from exc
    tokens.append(tokenizer.encode_special("<|start|>"))
    tokens += tokenizer.encode("assistant")
    return tokens


def _library_analysis_cutoff(messages: Sequence[Mapping[str, Any]]) -> int:
    """openai-harmony's `auto_drop_analysis`: when the last assistant message is `final`, the
    analysis messages before the *first* final message are dropped.

    So a finished turn's chain of thought goes and an unfinished tool-call loop keeps all of it,
    but from the second finished turn on the library keeps the older analysis (use
    `drop_completed_chain_of_thought` first to drop every finished turn's).
    """
    last_assistant = next(
        (m for m in reversed(messages) if plain(m.get("role")) == "assistant"), None
    )
    if last_assistant is None or last_assistant.get("channel") != "final":
        return 0
    return next(i for i, m in enumerate(messages) if m.get("channel") == "final")


def drop_completed_chain_of_thought(
    messages: Sequence[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """The conversation without the analysis of turns that ended in a final answer.

    harmony's format guide asks for this before every new sample; the library's renderer only
    drops the first turn's. What follows the last final answer (a turn still in its tool-call
    loop) is kept, and the result renders the same under either rule.
    """
    finals = [
        i
        for i, m in enumerate(messages)
        if plain(m.get("role")) == "assistant" and m.get("channel") == "final"
    ]
    cutoff = finals[-1] if finals else 0
    return [m for i, m in enumerate(messages) if i >= cutoff or m.get("channel") != "analysis"]


def has_function_tools(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a developer message defines function tools (the system message then says so)."""
    return any(_defines_functions(message) for message in messages)


def _defines_functions(message: Mapping[str, Any]) -> bool:
    """Whether a developer content item defines a non-empty `functions` namespace."""
    for item in _content_items(message):
        if plain(item.get("type")) == "developer_content":
            functions = (item.get("tools") or {}).get("functions")
            if functions and functions.get("tools"):
                return True
    return False


def _content_items(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):  # Message.from_dict accepts a bare string as one text item
        return [{"type": "text", "text": content}]
    return list(content or [])


def render_message(
    message: Mapping[str, Any], tokenizer: Tokenizer, *, has_function_tools: bool = False
) -> list[int]:
    """`<|start|>{header}<|message|>{content}<|end|>`, or `<|call|>` for an assistant tool call.

    An incomplete message (cut short, see `messages.INCOMPLETE`) is given back as openai-harmony
    renders the same message with `INCOMPLETE_NOTE` after its text, closed by `<|end|>`: harmony
    has no open message mid-conversation (without `<|end|>` the next `<|start|>` would read as
    its text), so the model learns of the cut from the note. A cut tool call or chain of thought
    is left out (no tokens): a `<|call|>` with no result, or a dangling thought, is a shape the
    model never saw.
    """
    if is_incomplete(message):
        if message.get("channel") == "analysis" or message.get("recipient") not in (None, "all"):
            return []
        text = "".join(item.get("text", "") for item in _content_items(message)) + INCOMPLETE_NOTE
        message = {key: value for key, value in message.items() if key != "status"}
        message["content"] = [{"type": "text", "text": text}]
    special = tokenizer.encode_special
    role = plain(message.get("role"))
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    name = message.get("name")
    recipient = message.get("recipient")
    channel = message.get("channel")
    content_type = message.get("content_type")

    tokens = [special("<|start|>")]
    if role == "tool":
        if name is None:
            raise ValueError("a tool message needs the tool's name as its author name")
        tokens += tokenizer.encode(name)
    else:
        tokens += tokenizer.encode(role)
        if name is not None:
            tokens += tokenizer.encode(f":{name}")
    if recipient is not None and recipient != "all":
        tokens += tokenizer.encode(f" to={recipient}")
    if channel is not None:
        tokens.append(special("<|channel|>"))
        tokens += tokenizer.encode(channel)
    if content_type is not None:
        if content_type.startswith(CONSTRAIN):
            tokens += tokenizer.encode(" ")
            tokens.append(special(CONSTRAIN))
            tokens += tokenizer.encode(content_type[len(CONSTRAIN) :])
        else:
            tokens += tokenizer.encode(f" {content_type}")
    tokens.append(special("<|message|>"))
    for item in _content_items(message):
        tokens += tokenizer.encode(_content_text(item, role, has_function_tools))
    is_call = role == "assistant" and recipient is not None
    tokens.append(special("<|call|>" if is_call else "<|end|>"))
    return tokens


def _content_text(item: Mapping[str, Any], role: str, has_function_tools: bool) -> str:
    kind = plain(item.get("type"))
    if kind == "text":
        return item["text"]
    if kind == "system_content":
        if role != "system":
            raise ValueError(f"system content may only appear in system messages, not {role}")
        return _system_text(item, has_function_tools=has_function_tools)
    if kind == "developer_content":
        if role != "developer":
            raise ValueError(f"developer content may only appear in developer messages, not {role}")
        return _developer_text(item)
    raise ValueError(f"unknown content type {kind!r}")


def _system_text(content: Mapping[str, Any], *, has_function_tools: bool = False) -> str:
    """Identity and dates, reasoning level, built-in tools, channels: blocks joined by a blank line.

    `has_function_tools` (a developer message defines functions) adds the line that routes
    function calls to the commentary channel.
    """
    sections = []
    top = [
        line
        for line in (
            content.get("model_identity"),
            _labelled("Knowledge cutoff", content.get("knowledge_cutoff")),
            _labelled("Current date", content.get("conversation_start_date")),
        )
        if line is not None
    ]
    if top:
        sections.append("\n".join(top))
    effort = plain(content.get("reasoning_effort"))
    if effort is not None:
        if effort not in _EFFORT_WORDS:
            raise ValueError(
                f"reasoning_effort must be one of {sorted(_EFFORT_WORDS)}, not {effort!r}"
            )
        sections.append(f"Reasoning: {_EFFORT_WORDS[effort]}")
    if content.get("tools"):
        sections.append(tools_section(content["tools"]))
    channel_config = content.get("channel_config")
    if channel_config and channel_config.get("valid_channels"):
        header = f"# Valid channels: {', '.join(channel_config['valid_channels'])}."
        if channel_config.get("channel_required"):
            header += " Channel must be included for every message."
        if has_function_tools:
            header += "\nCalls to these tools must go to the commentary channel: 'functions'."
        sections.append(header)
    return "\n\n".join(sections)


def _labelled(label: str, value: str | None) -> str | None:
    return None if value is None else f"{label}: {value}"


def _developer_text(content: Mapping[str, Any]) -> str:
    """`# Instructions` and the instructions, then the function tools section."""
    sections = []
    if content.get("instructions") is not None:
        sections += ["# Instructions", content["instructions"]]
    if content.get("tools"):
        sections.append(tools_section(content["tools"]))
    return "\n\n".join(sections)
