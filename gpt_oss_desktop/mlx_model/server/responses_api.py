"""`POST /v1/responses`: a request read into a harmony conversation, and the reply reported as the
Responses API defines it, in one pass that serves both the streamed and the whole response.

Items map to harmony as OpenAI's reference server maps them: a `reasoning` item is an analysis
message, a `function_call` a commentary message to `functions.NAME`, a `function_call_output`
the tool's reply, an assistant `message` the final answer (a preamble with
`phase: "commentary"`). The engine drops the chain of thought of finished turns, so reasoning
sent back for the turn in progress is what the model sees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..chat import Chat
from ..events import Event
from ..harmony import ReasoningLevel, assistant_message, user_message
from ..structured import ResponseFormat
from .errors import bad_request
from .fields import Fields
from .hosted_tools import ServerTools
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
from .reply import Part, PartAnswered, PartDelta, PartDone, PartStarted, ReplyReader, new_id
from .store import ResponseStore

MESSAGE_ROLES = ("user", "assistant", "system", "developer")
INPUT_TEXT_KINDS = ("input_text", "output_text", "text", "refusal")
HOSTED_ITEM_TYPES = frozenset({"web_search_call", "code_interpreter_call", "mcp_call"})
IGNORED_ITEM_TYPES = frozenset({
    # Hosted-tool items a client (Codex) may send back; they carry nothing this model can read.
    "web_search_call", "code_interpreter_call", "file_search_call", "computer_call", "computer_call_output",
    "image_generation_call", "local_shell_call", "local_shell_call_output", "mcp_list_tools", "mcp_call",
    "mcp_approval_request", "mcp_approval_response", "custom_tool_call", "custom_tool_call_output",
})


@dataclass
class ResponsesRequest:
    body: Fields
    input_items: list[dict[str, Any]]
    instructions: str | None
    tools: list[dict[str, Any]]  # as the client sent them, echoed in the response
    function_tools: list[dict[str, Any]]
    choice: ReplyChoice
    effort: str | None  # reasoning.effort as the client sent it, echoed back
    reasoning_level: ReasoningLevel
    previous_response_id: str | None
    store: bool
    stream: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    response_format: ResponseFormat | None = None
    text_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})  # echoed as sent


def read_request(body: Fields) -> ResponsesRequest:
    raw_input = body.data.get("input")
    if raw_input is None:
        raise bad_request("input is required", "input")
    if isinstance(raw_input, str):
        items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw_input}]}]
    else:
        items = [item.data for item in body.objects("input")]
    tools = body.objects("tools")
    function_tools = [function_tool(tool) for tool in tools if tool.get("type", str) == "function"]
    reasoning = body.object("reasoning")
    effort = reasoning.get("effort", str) if reasoning else None
    text = body.object("text")
    text_format = text.get("format", dict) if text else None
    return ResponsesRequest(
        body=body,
        input_items=items,
        instructions=body.get("instructions", str),
        tools=[tool.data for tool in tools],
        function_tools=function_tools,
        choice=tool_choice(body.data.get("tool_choice"), "tool_choice", function_tools),
        effort=effort,
        reasoning_level=reasoning_level_of(effort, "reasoning.effort"),
        previous_response_id=body.get("previous_response_id", str),
        store=body.get("store", bool, True),
        stream=body.get("stream", bool, False),
        metadata=body.get("metadata", dict, {}),
        response_format=response_format(ResponseFormat.from_responses_text_format, text_format, "text.format"),
        text_format=text_format or {"type": "text"},
    )


def conversation_for(items: list[dict[str, Any]], request: ResponsesRequest, start_date: str,
                     store: ResponseStore) -> Chat:
    """The harmony conversation of a chain's items (the stored chain first, then the new input).

    System and developer messages join the instructions: harmony has one developer message.
    A function call sent back without its reasoning gets the reasoning the server reported
    with it, when the server still has it.
    """
    messages: list[dict[str, Any]] = []
    instructions = [request.instructions] if request.instructions else []
    call_names: dict[str, str] = {}
    for index, data in enumerate(items):
        item = Fields(data, f"input[{index}]")
        kind = item.get("type", str, "message")
        if kind == "message":
            role = item.choice("role", MESSAGE_ROLES)
            if role is None:
                raise bad_request(f"{item.path}.role is required", f"{item.path}.role")
            text = text_of_parts(item.data.get("content"), f"{item.path}.content", INPUT_TEXT_KINDS)
            if role in ("system", "developer"):
                instructions.append(text)
            elif role == "user":
                messages.append(user_message(text))
            else:
                channel = "commentary" if item.get("phase", str) == "commentary" else "final"
                messages.append(assistant_message(text, channel=channel))
        elif kind == "reasoning":
            text = "".join(part.require("text", str) for part in item.objects("content"))
            if text:
                messages.append(reasoning_message(text))
        elif kind == "function_call":
            call_id = item.require("call_id", str)
            name = item.require("name", str)
            call_names[call_id] = name
            if not (messages and messages[-1].get("channel") == "analysis"):
                reasoning = store.reasoning_for(call_id)
                if reasoning:
                    messages.append(reasoning_message(reasoning))
            messages.append(call_message(name, item.require("arguments", str)))
        elif kind == "function_call_output":
            call_id = item.require("call_id", str)
            if call_id not in call_names:
                raise bad_request(f"{item.path}.call_id {call_id!r} matches no function_call before it",
                                  f"{item.path}.call_id")
            output = text_of_parts(item.data.get("output"), f"{item.path}.output", INPUT_TEXT_KINDS)
            messages.append(result_message(call_names[call_id], output))
        elif kind in HOSTED_ITEM_TYPES and item.get("id", str):
            messages += store.tool_rounds(item.get("id", str))  # a call this server's tools answered
        elif kind == "item_reference":
            raise bad_request(f"{item.path}: item_reference is not supported; send the item itself", item.path)
        elif kind not in IGNORED_ITEM_TYPES:
            raise bad_request(f"{item.path}.type {kind!r} is not an input item type", f"{item.path}.type")
    return conversation(messages, instructions, request.reasoning_level, request.function_tools, request.choice,
                        start_date)


class ResponseBuilder:
    """Engine events in; the response object and its stream events (numbered in order) out."""

    def __init__(self, request: ResponsesRequest, model: str, count_tokens, tools: ServerTools | None = None) -> None:
        self.request = request
        self.tools = tools
        self.reader = ReplyReader(tools.runs) if tools else ReplyReader()
        self._count_tokens = count_tokens
        self._sequence = 0
        self.item_ids: dict[int, str] = {}
        body = request.body
        self.response: dict[str, Any] = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": model,
            "output": [],
            "parallel_tool_calls": False,
            "tool_choice": body.data.get("tool_choice") or "auto",
            "tools": request.tools,
            "instructions": request.instructions,
            "max_output_tokens": body.get("max_output_tokens", int),
            "previous_response_id": request.previous_response_id,
            "reasoning": {"effort": request.effort or request.reasoning_level, "summary": None},
            "store": request.store,
            "temperature": body.get("temperature", float, 1.0),
            "top_p": body.get("top_p", float, 1.0),
            "text": {"format": request.text_format},
            "truncation": "disabled",
            "error": None,
            "incomplete_details": None,
            "usage": None,
            "metadata": request.metadata,
        }

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": list(self.response["output"])}

    def opening(self) -> list[dict[str, Any]]:
        return [self._event("response.created", response=self._snapshot()),
                self._event("response.in_progress", response=self._snapshot())]

    def feed(self, event: Event) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for part_event in self.reader.feed(event):
            if isinstance(part_event, PartStarted):
                out += self._started(part_event.part)
            elif isinstance(part_event, PartDelta):
                out += self._delta(part_event.part, part_event.text)
            elif isinstance(part_event, PartDone):
                out += self._finished(part_event.part)
            elif isinstance(part_event, PartAnswered):
                out += self._answered(part_event.part)
        return out

    def _ids(self, part: Part) -> dict[str, Any]:
        return {"item_id": self.item_ids[part.index], "output_index": part.index}

    def _started(self, part: Part) -> list[dict[str, Any]]:
        prefix = {"reasoning": "rs", "text": "msg", "call": "fc"}.get(part.kind)
        if self.tools is not None and part.kind == "hosted":
            prefix = {"web_search_call": "ws", "code_interpreter_call": "ci", "mcp_call": "mcp"}[
                self.tools.item_type(part)]
        self.item_ids[part.index] = new_id(prefix)
        item = self._item(part, "in_progress")
        self.response["output"].append(item)
        added = self._event("response.output_item.added", output_index=part.index, item=item)
        if part.kind == "hosted":
            return [added, *self.tools.started(part, self._ids(part), self._event)]
        if part.kind == "call":
            return [added]
        return [added, self._event("response.content_part.added", **self._ids(part), content_index=0,
                                   part=self._content(part, ""))]

    def _delta(self, part: Part, text: str) -> list[dict[str, Any]]:
        if part.kind == "hosted":
            return self.tools.delta(part, self._ids(part), text, self._event)
        kind = {"reasoning": "response.reasoning_text.delta", "text": "response.output_text.delta",
                "call": "response.function_call_arguments.delta"}[part.kind]
        fields = {"content_index": 0} if part.kind != "call" else {}
        if part.kind == "text":
            fields["logprobs"] = []
        return [self._event(kind, **self._ids(part), **fields, delta=text)]

    def _finished(self, part: Part) -> list[dict[str, Any]]:
        if part.kind == "hosted":  # written; the tool runs next, and its answer completes the item
            self.response["output"][part.index] = self._item(part, "in_progress")
            return self.tools.called(part, self._ids(part), self._event)
        item = self._item(part, "completed")
        self.response["output"][part.index] = item
        if part.kind == "call":
            events = [self._event("response.function_call_arguments.done", **self._ids(part), name=part.name,
                                  arguments=part.text)]
        else:
            text_done = "response.reasoning_text.done" if part.kind == "reasoning" else "response.output_text.done"
            extra = {"logprobs": []} if part.kind == "text" else {}
            events = [self._event(text_done, **self._ids(part), content_index=0, **extra, text=part.text),
                      self._event("response.content_part.done", **self._ids(part), content_index=0,
                                  part=self._content(part, part.text))]
        return events + [self._event("response.output_item.done", output_index=part.index, item=item)]

    def _answered(self, part: Part) -> list[dict[str, Any]]:
        item = self._item(part, "completed" if part.result.ok else "failed")
        self.response["output"][part.index] = item
        return [*self.tools.answered(part, self._ids(part), self._event),
                self._event("response.output_item.done", output_index=part.index, item=item)]

    def _content(self, part: Part, text: str) -> dict[str, Any]:
        if part.kind == "reasoning":
            return {"type": "reasoning_text", "text": text}
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def _item(self, part: Part, status: str) -> dict[str, Any]:
        item_id = self.item_ids[part.index]
        finished = status != "in_progress"
        if part.kind == "hosted":
            return self.tools.item(part, item_id, status)
        if part.kind == "reasoning":
            return {"id": item_id, "type": "reasoning", "summary": [],
                    "content": [self._content(part, part.text)] if finished else [],
                    "encrypted_content": None, "status": status}
        if part.kind == "call":
            return {"id": item_id, "type": "function_call", "call_id": part.call_id, "name": part.name,
                    "arguments": part.text if finished else "", "status": status}
        item = {"id": item_id, "type": "message", "role": "assistant", "status": status,
                "content": [self._content(part, part.text)] if finished else []}
        if part.channel == "commentary":
            item["phase"] = "commentary"
        return item

    def closing(self) -> list[dict[str, Any]]:
        """The terminal event, once the engine is done: completed, incomplete or failed."""
        reader = self.reader
        done, stats = reader.done, reader.stats
        if done is None or done.reason in ("return", "call"):
            self.response["status"] = "completed"
        elif done.reason in ("max_tokens", "context_full"):
            self.response["status"] = "incomplete"
            self.response["incomplete_details"] = {"reason": "max_output_tokens"}
            if reader.parts:  # the item the limit cut short
                self.response["output"][-1] = self._item(reader.parts[-1], "incomplete")
        elif done.reason == "cancelled":
            self.response["status"] = "cancelled"
        else:
            self.response["status"] = "failed"
            self.response["error"] = {"code": "server_error", "message": done.detail}
        for part in reader.parts:  # a tool call the reply ended before answering (cancelled, round cap)
            if part.kind == "hosted" and part.result is None:
                self.response["output"][part.index] = self._item(part, "incomplete")
        if stats is not None:
            reasoning_tokens = reader.reasoning_tokens(self._count_tokens)
            self.response["usage"] = {
                "input_tokens": stats.prompt_tokens,
                "input_tokens_details": {"cached_tokens": stats.cached_tokens,
                                         "cache_write_tokens": stats.prompt_tokens - stats.cached_tokens},
                "output_tokens": stats.new_tokens,
                "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                "total_tokens": stats.prompt_tokens + stats.new_tokens,
            }
        terminal = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
            self.response["status"], "response.failed")
        return [self._event(terminal, response=self._snapshot())]

    def fail(self, message: str) -> list[dict[str, Any]]:
        self.response["status"] = "failed"
        self.response["error"] = {"code": "server_error", "message": message}
        return [self._event("response.failed", response=self._snapshot())]
