"""The model's own tools run inside the server (`gpt-oss-serve --tools browser,python --library
PATH [--web] [--mcp FILE]`), and how the Responses API reports them.

A request then runs through the engine's tool loop: a call to the browser, python or an MCP tool
is answered here and the reply goes on; a call to a function the client declared ends the reply
and is handed to the client as usual. Nobody is asked for consent on the client's behalf: python
runs only when the operator listed it in `--tools`, and MCP tools that may change something only
with `--approve always` (otherwise the model is told the call was not allowed).

In the Responses API a browser call is a `web_search_call` item (action search, open_page or
find_in_page), a python call a `code_interpreter_call` (code, logs), an MCP call an `mcp_call`
(server label, tool name, arguments, output), each with the API's event sequence; Chat
Completions has no items for them, so its clients see the reasoning and the final answer only.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..chat import Chat
from ..events import Event
from ..forward import StepRequest
from ..sampling import SamplingSettings
from ..structured import ResponseFormat
from .conversation_kernels import DEFAULT_CAPACITY, ConversationKernels
from .reply import Part

if TYPE_CHECKING:  # the tools' HTML, PDF and MCP libraries load only when a server has tools
    from ..tool_loop import ApprovalRequest
    from ..tools import Toolbox

_PAGE_URL = re.compile(r"^\[\d+\] .*\((?P<url>[^()\s]+)\)$")
EventMaker = Callable[..., dict[str, Any]]


@dataclass
class ServerTools:
    """The operator's tools for every request; `approve_changes`: run MCP tools that may change
    something (python is approved by being enabled at all). Python runs in a kernel of the
    request's own conversation (at most `python_kernels` kept), never in one client's for all."""

    toolbox: Toolbox
    approve_changes: bool = False
    python_kernels: int = DEFAULT_CAPACITY
    kernels: ConversationKernels | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.toolbox.has_python:
            self.kernels = ConversationKernels(self.toolbox.python_folder, self.toolbox.new_kernel,
                                               self.python_kernels)

    def declare(self, chat: Chat) -> None:
        from ..tool_loop import declare_tools

        declare_tools(chat, self.toolbox)

    def runs(self, recipient: str | None) -> bool:
        return recipient is not None and self.toolbox.handles(recipient)

    def _approve(self, request: ApprovalRequest) -> bool:
        return request.recipient.strip() in ("python", "functions.python") or self.approve_changes

    def reply(self, engine: Any, chat: Chat, sampling: SamplingSettings, cancel: threading.Event,
              response_format: ResponseFormat | None = None) -> Iterator[Event | StepRequest]:
        """Engine events of every round (the answer held to `response_format`), and the decode
        steps for the server's batch to run; on the engine thread, so tool calls run one at a time."""
        from ..tool_loop import reply_with_tools

        self.toolbox.new_browser_session()  # cursors of another request's pages mean nothing here
        held = self.kernels.hold(chat) if self.kernels is not None else None
        try:
            yield from reply_with_tools(engine, chat, self.toolbox.with_kernel(held.kernel) if held else self.toolbox,
                                        sampling, cancel, approve=self._approve, response_format=response_format,
                                        only_own_calls=True, batched=True, keep_on_disk=True)
        finally:
            if held is not None:
                self.kernels.release(held)

    def item_type(self, part: Part) -> str:
        recipient = (part.recipient or "").strip()
        if recipient.startswith("browser."):
            return "web_search_call"
        if self.toolbox.mcp_origin(recipient) is not None:
            return "mcp_call"
        return "code_interpreter_call"

    def item(self, part: Part, item_id: str, status: str) -> dict[str, Any]:
        """The output item for a hosted call, as far as it has got (`status`)."""
        kind = self.item_type(part)
        result = part.result
        if kind == "web_search_call":
            return {"id": item_id, "type": kind, "status": status, "action": _browser_action(part)}
        if kind == "code_interpreter_call":
            outputs = None
            if result is not None:
                outputs = [{"type": "logs", "logs": result.text}] + [
                    {"type": "image", "url": f"data:{mime};base64,{data}"} for mime, data in result.images]
            return {"id": item_id, "type": kind, "status": status, "code": part.text, "container_id": "local",
                    "outputs": outputs}
        server, tool = self.toolbox.mcp_origin(part.recipient or "") or ("", part.name)
        item = {"id": item_id, "type": kind, "server_label": server, "name": tool,
                "arguments": part.text if part.finished else "", "status": status, "output": None, "error": None}
        if result is not None:
            item["output" if result.ok else "error"] = result.text
        return item

    def started(self, part: Part, ids: dict[str, Any], event: EventMaker) -> list[dict[str, Any]]:
        prefix = {"web_search_call": "response.web_search_call", "code_interpreter_call":
                  "response.code_interpreter_call", "mcp_call": "response.mcp_call"}[self.item_type(part)]
        return [event(f"{prefix}.in_progress", **ids)]

    def delta(self, part: Part, ids: dict[str, Any], text: str, event: EventMaker) -> list[dict[str, Any]]:
        kind = self.item_type(part)
        if kind == "code_interpreter_call":
            return [event("response.code_interpreter_call_code.delta", **ids, delta=text)]
        if kind == "mcp_call":
            return [event("response.mcp_call_arguments.delta", **ids, delta=text)]
        return []  # a search is reported by its action once the call is complete

    def called(self, part: Part, ids: dict[str, Any], event: EventMaker) -> list[dict[str, Any]]:
        """The call is written; its tool runs next."""
        kind = self.item_type(part)
        if kind == "web_search_call":
            return [event("response.web_search_call.searching", **ids)]
        if kind == "code_interpreter_call":
            return [event("response.code_interpreter_call_code.done", **ids, code=part.text),
                    event("response.code_interpreter_call.interpreting", **ids)]
        return [event("response.mcp_call_arguments.done", **ids, arguments=part.text)]

    def answered(self, part: Part, ids: dict[str, Any], event: EventMaker) -> list[dict[str, Any]]:
        kind = self.item_type(part)
        if kind == "mcp_call":
            return [event("response.mcp_call.completed" if part.result and part.result.ok else
                          "response.mcp_call.failed", **ids)]
        return [event(f"response.{kind}.completed", **ids)]

    def close(self) -> None:
        if self.kernels is not None:
            self.kernels.close()
        self.toolbox.close()


def _browser_action(part: Part) -> dict[str, Any]:
    """search → query; open → the page's URL; find → pattern and URL (from the tool's reply)."""
    function = (part.recipient or "").strip().removeprefix("browser.")
    try:
        arguments = json.loads(part.text) if part.finished and part.text.strip() else {}
    except json.JSONDecodeError:
        arguments = {}
    arguments = arguments if isinstance(arguments, dict) else {}
    url = _page_url(part)
    if function == "search":
        action: dict[str, Any] = {"type": "search"}
        if "query" in arguments:
            action["query"] = str(arguments["query"])
        return action
    if function == "find":
        return {"type": "find_in_page", "pattern": str(arguments.get("pattern", "")), "url": url or ""}
    opened = arguments.get("id")
    return {"type": "open_page", "url": url or (opened if isinstance(opened, str) else None)}


def _page_url(part: Part) -> str | None:
    """The URL a browser reply shows in its first line, `[cursor] title (url)`."""
    if part.result is None:
        return None
    match = _PAGE_URL.match(part.result.text.split("\n", 1)[0])
    return match["url"] if match else None
