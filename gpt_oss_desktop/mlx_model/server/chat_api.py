"""`POST /v1/chat/completions`: messages read into a harmony conversation, and the reply as
Chat Completions chunks or one completion.

The reply's chain of thought goes out in both fields clients read, `reasoning` (OpenAI's gpt-oss
compatibility test, Ollama, vLLM) and `reasoning_content` (llama.cpp, LM Studio), never inside
`content`; coming back on an assistant message it is accepted under either name (or `thinking`)
and rendered as the analysis of the turn in progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..chat import Chat
from ..events import Event
from ..harmony import ReasoningLevel, assistant_message, user_message
from ..structured import ResponseFormat
from .errors import bad_request
from .fields import Fields
from .prompting import (
    ReplyChoice,
    call_message,
    conversation,
    function_tool,
    reasoning_level_of,
    reasoning_message,
    response_format,
    result_message,
    text_of_parts,
    tool_choice,
)
from .reply import Part, PartDelta, PartStarted, ReplyReader, new_id
from .store import ResponseStore

ROLES = ("system", "developer", "user", "assistant", "tool")
TEXT_KINDS = ("text", "input_text", "output_text", "refusal")
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


@dataclass
class ChatRequest:
    body: Fields
    messages: list[Fields]
    function_tools: list[dict[str, Any]]
    choice: ReplyChoice
    reasoning_level: ReasoningLevel
    stream: bool
    include_usage: bool
    response_format: ResponseFormat | None = None


def read_request(body: Fields) -> ChatRequest:
    messages = body.objects("messages")
    if not messages:
        raise bad_request("messages must hold at least one message", "messages")
    if body.get("n", int, 1) != 1:
        raise bad_request("n must be 1: one choice per request", "n")
    tools = [tool for tool in body.objects("tools") if tool.get("type", str) == "function"]
    function_tools = [function_tool(tool.object("function") or Fields({}, f"{tool.path}.function")) for tool in tools]
    held_to = response_format(ResponseFormat.from_chat_completions, body.get("response_format", dict),
                              "response_format")
    effort = body.get("reasoning_effort", str)
    nested = body.object("reasoning")  # Ollama's {"reasoning": {"effort": ...}}
    if effort is None and nested is not None:
        effort = nested.get("effort", str)
    options = body.object("stream_options")
    return ChatRequest(
        body=body,
        messages=messages,
        function_tools=function_tools,
        choice=tool_choice(body.data.get("tool_choice"), "tool_choice", function_tools),
        reasoning_level=reasoning_level_of(effort, "reasoning_effort"),
        stream=body.get("stream", bool, False),
        include_usage=bool(options and options.get("include_usage", bool, False)),
        response_format=held_to,
    )


def conversation_for(request: ChatRequest, start_date: str, store: ResponseStore) -> Chat:
    messages: list[dict[str, Any]] = []
    instructions: list[str] = []
    call_names: dict[str, str] = {}
    for message in request.messages:
        role = message.choice("role", ROLES)
        if role is None:
            raise bad_request(f"{message.path}.role is required", f"{message.path}.role")
        content = message.data.get("content")
        text = "" if content is None else text_of_parts(content, f"{message.path}.content", TEXT_KINDS)
        if role in ("system", "developer"):
            instructions.append(text)
        elif role == "user":
            messages.append(user_message(text))
        elif role == "tool":
            call_id = message.require("tool_call_id", str)
            if call_id not in call_names:
                raise bad_request(f"{message.path}.tool_call_id {call_id!r} matches no tool call before it",
                                  f"{message.path}.tool_call_id")
            messages.append(result_message(call_names[call_id], text))
        else:
            calls = message.objects("tool_calls")
            reasoning = next((message.get(key, str) for key in REASONING_FIELDS if message.has(key)), None)
            if calls:  # the calls the server's own tools answered before the client's
                messages += store.tool_rounds(calls[0].require("id", str))
            if reasoning is None and calls:
                reasoning = store.reasoning_for(calls[0].require("id", str))
            if reasoning:
                messages.append(reasoning_message(reasoning))
            if text:
                messages.append(assistant_message(text, channel="commentary" if calls else "final"))
            for call in calls:
                function = call.object("function") or Fields({}, f"{call.path}.function")
                name = function.require("name", str)
                call_names[call.require("id", str)] = name
                messages.append(call_message(name, function.get("arguments", str, "{}")))
    return conversation(messages, instructions, request.reasoning_level, request.function_tools, request.choice,
                        start_date)


class CompletionBuilder:
    """Engine events in; Chat Completions chunks, or the completion, out."""

    def __init__(self, model: str, count_tokens, hosted: Callable[[str], bool] | None = None) -> None:
        self.reader = ReplyReader(hosted) if hosted else ReplyReader()
        self._count_tokens = count_tokens
        self.id = new_id("chatcmpl")
        self.created = int(time.time())
        self.model = model

    def _chunk(self, delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                             "finish_reason": finish_reason}]
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": choices, **extra}

    def opening(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": ""})

    def feed(self, event: Event) -> list[dict[str, Any]]:
        chunks = []
        for part_event in self.reader.feed(event):
            if isinstance(part_event, PartStarted) and part_event.part.kind == "call":
                part = part_event.part
                chunks.append(self._chunk({"tool_calls": [{
                    "index": self._call_index(part), "id": part.call_id, "type": "function",
                    "function": {"name": part.name, "arguments": ""}}]}))
            elif isinstance(part_event, PartDelta) and part_event.part.kind != "hosted":  # tools run here
                chunks.append(self._chunk(self._delta(part_event.part, part_event.text)))
        return chunks

    def _call_index(self, part: Part) -> int:
        return [call.index for call in self.reader.calls].index(part.index)

    def _delta(self, part: Part, text: str) -> dict[str, Any]:
        if part.kind == "reasoning":
            return {"reasoning": text, "reasoning_content": text}
        if part.kind == "call":
            return {"tool_calls": [{"index": self._call_index(part), "function": {"arguments": text}}]}
        return {"content": text}

    @property
    def finish_reason(self) -> str:
        done = self.reader.done
        if done is not None and done.reason in ("max_tokens", "context_full"):
            return "length"
        return "tool_calls" if self.reader.calls else "stop"

    def usage(self) -> dict[str, Any] | None:
        stats = self.reader.stats
        if stats is None:
            return None
        reasoning_tokens = self.reader.reasoning_tokens(self._count_tokens)
        return {
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.new_tokens,
            "total_tokens": stats.prompt_tokens + stats.new_tokens,
            "prompt_tokens_details": {"cached_tokens": stats.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        }

    def closing(self, include_usage: bool) -> list[dict[str, Any]]:
        chunks = [self._chunk({}, self.finish_reason)]
        if include_usage:
            chunks.append(self._chunk(None, usage=self.usage()))
        return chunks

    def completion(self) -> dict[str, Any]:
        reader = self.reader
        message: dict[str, Any] = {"role": "assistant", "content": reader.visible_text or None,
                                   "reasoning": reader.reasoning or None, "reasoning_content": reader.reasoning or None}
        if reader.calls:
            message["tool_calls"] = [{"id": part.call_id, "type": "function",
                                      "function": {"name": part.name, "arguments": part.text}}
                                     for part in reader.calls]
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}],
                "usage": self.usage()}
