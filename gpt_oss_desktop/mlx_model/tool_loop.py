"""The tool loop: a reply that calls tools runs them and goes on until the model answers.

Each round is one `Engine.reply`; when it ends in a call, the call is dispatched by recipient
through a `Toolbox`, the tool's message is added to the chat and the next round continues the
same turn, so the engine's prompt cache keeps every token (it continues a tool-call turn with
the tokens the model wrote). Calls that run code or may change something are put to `approve`
first; without it they are refused. Rounds are capped: past the cap the call is answered with
an error so the model can still answer with what it has, and one more call ends the reply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .chat import Chat
from .engine import Engine
from .events import Done, Event, ToolResult
from .forward import StepRequest
from .harmony import text_of
from .sampling import SamplingSettings
from .structured import ResponseFormat
from .tools import Toolbox, reply_message

MAX_TOOL_ROUNDS = 8


@dataclass(frozen=True)
class ApprovalRequest:
    """A call waiting for the user's consent: what would run (the code, or the arguments)."""

    recipient: str
    arguments: str


Approve = Callable[[ApprovalRequest], bool]


def declare_tools(chat: Chat, toolbox: Toolbox) -> None:
    """Put the toolbox's tools in the chat's header: the built-ins in the system message, its
    functions (the app's, MCP servers') in the developer message beside the chat's own."""
    chat.builtin_tools = tuple(name for name, on in (("browser", toolbox.has_browser), ("python", toolbox.has_python))
                               if on)
    offered = {tool["name"] for tool in toolbox.functions()}
    chat.tools = [tool for tool in chat.tools if tool["name"] not in offered] + toolbox.functions()


def reply_with_tools(
    engine: Engine,
    chat: Chat,
    toolbox: Toolbox,
    sampling: SamplingSettings = SamplingSettings(),
    cancel: threading.Event | None = None,
    approve: Approve | None = None,
    max_rounds: int = MAX_TOOL_ROUNDS,
    on_token: Callable[[int], None] | None = None,
    response_format: ResponseFormat | None = None,
    only_own_calls: bool = False,
    on_prompt: Callable[[list[int]], None] | None = None,
    batched: bool = False,
    keep_on_disk: bool = False,
) -> Iterator[Event | StepRequest]:
    """`Engine.reply`'s events for every round, with a ToolResult after each call it answers
    (the answer that ends the turn held to `response_format`).

    Every round ends with its Stats and Done; a Done with reason "call" followed by a ToolResult
    means the reply goes on, the last Done ends it. With `only_own_calls` a call to a tool the
    toolbox does not have ends the reply instead (a server's client runs its own functions).
    With `batched` each round's decode steps are passed on for the caller to run, and with
    `keep_on_disk` the cache may be spilled to disk (both Engine.reply's).
    """
    cancel = cancel or threading.Event()
    rounds = 0
    while True:
        done: Done | None = None
        for event in engine.reply(chat, sampling, cancel, on_token, response_format=response_format,
                                  on_prompt=on_prompt, batched=batched, keep_on_disk=keep_on_disk):
            if isinstance(event, Done):
                done = event
            yield event
        if done is None or done.reason != "call" or cancel.is_set():
            return
        call = next((m for m in reversed(done.messages) if m.get("recipient")), None)
        if call is None or (only_own_calls and not toolbox.handles(call["recipient"])):
            return
        if rounds > max_rounds:
            return  # the model was told to stop calling tools and called one anyway
        result = _answer(call, toolbox, approve, limit=max_rounds if rounds == max_rounds else None)
        chat.messages.append(result.message)
        yield result
        rounds += 1


def _answer(call: dict, toolbox: Toolbox, approve: Approve | None, limit: int | None) -> ToolResult:
    """Run the call, or refuse it (over the round limit, or not approved) with a reply saying so."""
    recipient, arguments, channel = call["recipient"], text_of(call), call.get("channel")
    refusal = None
    if limit is not None:
        refusal = f"[ERROR] This reply has already made {limit} tool calls, the most allowed; answer with what you have."
    elif toolbox.needs_approval(recipient) and not (approve and approve(ApprovalRequest(recipient, arguments))):
        refusal = "[ERROR] The user did not allow this call; it was not run."
    if refusal is not None:
        return ToolResult(recipient, refusal, 0.0, False, reply_message(recipient, refusal, channel))
    outcome = toolbox.run(recipient, arguments, channel)
    return ToolResult(recipient, outcome.text, outcome.seconds, outcome.ok, outcome.message,
                      tuple((image.mime, image.data_base64) for image in outcome.images))
