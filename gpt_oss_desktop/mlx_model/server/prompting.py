"""What both APIs share on the way in: function tools (strict ones checked against the Structured
Outputs subset), tool_choice, the response format, the reasoning level, sampling, and the harmony
messages that replay a function call, its result and its chain of thought."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..chat import Chat
from ..harmony import ReasoningLevel, assistant_message, tool_result_message
from ..sampling import SamplingSettings
from ..structured import ResponseFormat, StructuredOutputError, ToolChoice, check_schema
from .errors import bad_request
from .fields import Fields
from .reply import FUNCTIONS_PREFIX

EFFORTS: dict[str, ReasoningLevel] = {
    # gpt-oss knows three levels; the API's others map to the nearest.
    "none": "low", "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high",
    "max": "high",
}
DEFAULT_EFFORT: ReasoningLevel = "medium"
JSON_CONTENT_TYPE = "<|constrain|>json"
BUILTIN_RECIPIENTS = ("browser.", "python")


def reasoning_level_of(effort: str | None, path: str) -> ReasoningLevel:
    """The reasoning level for the API's effort at `path` (the edge: inside, it is reasoning_level)."""
    if effort is None:
        return DEFAULT_EFFORT
    if effort not in EFFORTS:
        raise bad_request(f"{path} must be one of {', '.join(EFFORTS)}, not {effort!r}", path)
    return EFFORTS[effort]


def function_tool(tool: Fields) -> dict[str, Any]:
    """A function tool's harmony description from `{"name", "description", "parameters",
    "strict"}`; a strict tool's parameters must be in the Structured Outputs subset, since its
    calls' arguments are held to them."""
    name = tool.require("name", str)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise bad_request(f"{tool.path}.name must be letters, digits, '_' or '-', not {name!r}", f"{tool.path}.name")
    description = {"name": name, "description": tool.get("description", str, "")}
    parameters = tool.get("parameters", dict)
    if parameters is not None:
        description["parameters"] = parameters
    if tool.get("strict", bool, False):
        path = f"{tool.path}.parameters"
        try:
            check_schema(parameters or {"type": "object", "properties": {}, "additionalProperties": False}, strict=True)
        except ValueError as error:
            raise bad_request(f"{path}: {error}", path, "invalid_function_parameters") from None
        description["strict"] = True
    return description


@dataclass(frozen=True)
class ReplyChoice:
    """`tools_visible` False for "none": the model is not shown the tools at all; `engine` is
    what the engine holds the reply to ("auto", "required" or the recipient it must call)."""

    tools_visible: bool
    engine: ToolChoice = "auto"


def tool_choice(value: Any, path: str, function_tools: list[dict[str, Any]]) -> ReplyChoice:
    """none, auto, required, or a function by name in either API's shape (`{"type": "function",
    "name"}` for Responses, `{"type": "function", "function": {"name"}}` for Chat Completions)."""
    if value is None or value == "auto":
        return ReplyChoice(True)
    if value == "none":
        return ReplyChoice(False)
    if value == "required":
        if not function_tools:
            raise bad_request(f"{path} 'required' needs at least one function tool in tools", path)
        return ReplyChoice(True, "required")
    if isinstance(value, dict):
        choice = Fields(value, path)
        kind = choice.require("type", str)
        if kind != "function":
            raise bad_request(f"{path}.type {kind!r} is not supported: choose none, auto, required or a function",
                              f"{path}.type", "unsupported_value")
        function = choice.object("function")
        name = function.require("name", str) if function is not None else choice.require("name", str)
        if name not in {tool["name"] for tool in function_tools}:
            raise bad_request(f"{path} names the function {name!r}, which is not in tools", path)
        return ReplyChoice(True, FUNCTIONS_PREFIX + name)
    raise bad_request(f"{path} must be none, auto, required or a function, not {value!r}", path)


def response_format(read: Any, value: Any, path: str) -> ResponseFormat | None:
    """`read` is the API's ResponseFormat reader; a format that cannot be enforced (an
    unsupported keyword, a malformed schema) is a 400 naming the field and the keyword."""
    try:
        return read(value)
    except StructuredOutputError as error:
        raise bad_request(str(error), path, "invalid_response_format") from None


def sampling(request: Fields, max_tokens_keys: tuple[str, ...], context_limit: int) -> SamplingSettings:
    """temperature, top_p, seed and the reply's token limit (the context when none is given)."""
    limit = next((request.positive_int(key) for key in max_tokens_keys if request.has(key)), None)
    return SamplingSettings(
        temperature=request.number("temperature", 0.0, 2.0, 1.0),
        top_p=request.number("top_p", 1e-9, 1.0, 1.0),
        seed=request.get("seed", int),
        max_new_tokens=limit or context_limit,
    )


def recipient_of(name: str) -> str:
    """The harmony recipient a call to `name` was addressed to (the inverse of Part.name)."""
    return name if name.startswith(BUILTIN_RECIPIENTS) else FUNCTIONS_PREFIX + name


def call_message(name: str, arguments: str) -> dict[str, Any]:
    """A function call as the model writes it, with the JSON content type, so the replayed turn
    is the one the model produced."""
    return assistant_message(arguments, channel="commentary", recipient=recipient_of(name),
                             content_type=JSON_CONTENT_TYPE)


def result_message(name: str, output: str) -> dict[str, Any]:
    return tool_result_message(recipient_of(name), output)


def reasoning_message(text: str) -> dict[str, Any]:
    return assistant_message(text, channel="analysis")


def text_of_parts(value: Any, path: str, kinds: tuple[str, ...]) -> str:
    """A content field: a string, or a list of text parts of the given types (images refused)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise bad_request(f"{path} must be a string or an array of content parts", path)
    texts = []
    for index, part in enumerate(value):
        item = Fields(part, f"{path}[{index}]")
        kind = item.require("type", str)
        if kind not in kinds:
            raise bad_request(f"{item.path}.type {kind!r} is not supported here (text only: {', '.join(kinds)})",
                              f"{item.path}.type")
        texts.append(item.require("refusal" if kind == "refusal" else "text", str))
    return "".join(texts)


def conversation(messages: list[dict[str, Any]], instructions: list[str], reasoning_level: ReasoningLevel,
                 function_tools: list[dict[str, Any]], choice: ReplyChoice, start_date: str) -> Chat:
    """The engine's conversation; system and developer texts join as the one developer message's
    instructions (harmony has one)."""
    return Chat(
        messages=messages,
        reasoning_level=reasoning_level,
        instructions="\n\n".join(instructions) or None,
        tools=function_tools if choice.tools_visible else [],
        start_date=start_date,
    )
