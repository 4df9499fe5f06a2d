"""The chat flow, apart from how it looks: the open chat, sending, streaming replies into the
store, stop, regenerate, edit and resend, reasoning levels. Loading the model and measuring it
are `ModelSession`'s; this asks it whether a model is ready and what the chat takes.

It lives on the GUI thread, talks to the engine only through `EngineHost`, and tells the window
what changed with signals; the window decides how to show it. The store is the truth: every
prompt is built from what is stored, so what the model saw is exactly what the user sees after a
restart.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from gpt_oss_desktop.mlx_model import (
    ApprovalRequest,
    Chat,
    Done,
    MessageDone,
    MessageStart,
    ParseWarning,
    Stats,
    TextDelta,
    ToolCall,
    ToolResult,
)

from .chat_tools import ChatTools, ToolRequest
from .export import chat_json, chat_markdown
from .model_session import ModelSession
from .recorder import ReplyRecorder
from .settings import Key, Settings
from .store import DEFAULT_TITLE, ConversationRecord, SearchHit, Store, StoreError
from .transcript import Turn, chat_for, group_turns, title_from_text
from .worker import EngineHost

log = logging.getLogger(__name__)

TICK_MS = 200
APPROVAL_CHOICES = ("once", "chat", "always", "deny")
"""How the user answers a call that needs consent: run it this once, allow this chat's calls,
allow every chat's (Settings › Tools › Ask before running), or do not run it."""

# A reply cut at the length limit is stopped like one the user stopped: unfinished, and said so.
_DONE_STATUS = {"return": "complete", "call": "complete", "max_tokens": "cancelled", "context_full": "complete",
                "cancelled": "cancelled", "error": "failed"}
RETRY_SAVE_MS = 2000
"""How often a reply that could not be written (a full disk) is tried again."""
_DONE_DETAIL = {
    "max_tokens": "Stopped at the maximum reply length (Settings › Maximum tokens).",
    "context_full": "The chat fills the model's context. Start a new chat, or raise the context length in Settings.",
}


@dataclass
class _Reply:
    reply_id: int
    conversation_id: int
    recorder: ReplyRecorder
    prompt_messages: list[dict[str, Any]]  # the chat's messages as sent (harmony dicts)
    done: Done | None = None
    failure: str | None = None
    stats: Stats | None = None
    approval: ApprovalRequest | None = None  # the call waiting for the user's consent

    def visible_text(self) -> str:
        return self.recorder.visible_text()

    def left_out_notice(self) -> str | None:
        """Which old messages the engine left out to fit the context, in the user's terms: it drops
        whole exchanges, so the user messages among the dropped ones count them."""
        dropped = self.stats.dropped_messages if self.stats else 0
        if not dropped:
            return None
        exchanges = sum(message.get("role") == "user" for message in self.prompt_messages[:dropped])
        oldest = ("Your oldest message and its reply" if exchanges == 1
                  else f"Your oldest {exchanges} messages and their replies")
        return f"{oldest} no longer fit in the context and were left out of this reply."


class ChatSession(QObject):
    conversations_changed = Signal()
    conversation_opened = Signal(object, object)  # ConversationRecord | None, list[Turn]
    reasoning_level_changed = Signal(str)
    user_turn_added = Signal(object)  # Turn
    turns_truncated = Signal(int)  # index of the first turn removed
    reply_started = Signal(str)  # reasoning level
    reply_text = Signal(str)  # the reply's whole visible text so far
    reasoning_started = Signal()
    reasoning_text = Signal(str)
    thinking = Signal(float)  # seconds of analysis so far
    thought = Signal(float)  # seconds, once analysis ends
    tool_called = Signal(str, str)  # recipient, arguments
    tool_answered = Signal(str, str, float, bool)  # tool name, result, seconds, whether it worked
    approval_requested = Signal(object)  # mlx_model.ApprovalRequest: ask the user (answer_approval)
    approval_settled = Signal()  # the question is answered or moot (the reply stopped)
    chat_tools_changed = Signal(object)  # ChatTools of the chat on screen
    note = Signal(str)
    reply_finished = Signal(object)  # the stored Turn, or None
    busy_changed = Signal(bool)
    stats = Signal(object)  # mlx_model.Stats
    error = Signal(str)
    error_resolved = Signal(str)  # a message `error` showed that is no longer true
    turns_saved = Signal(object)  # list[Turn]: the open chat once a reply kept in memory is written
    cache_note = Signal(str)  # a chat's saved prompt cache was refused: why (the chat is read afresh)

    def __init__(self, store: Store, settings: Settings, engine: EngineHost, model: ModelSession) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.engine = engine
        self.model = model
        self.current: ConversationRecord | None = None
        self.draft_reasoning_level = settings.default_reasoning_level()
        self.draft_tools = ChatTools()
        self._reply: _Reply | None = None
        self._unsaved: list[ReplyRecorder] = []  # ended replies the store does not have yet
        self._last_error = ""
        self._write_error: str | None = None  # a reply's failed write, shown until it goes through
        self._retry = QTimer(self)
        self._retry.setInterval(RETRY_SAVE_MS)
        self._retry.timeout.connect(self.save_unsaved)
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._on_tick)
        worker = engine.worker
        worker.event.connect(self._on_event)
        worker.reply_failed.connect(self._on_reply_failed)
        worker.reply_ended.connect(self._on_reply_ended)
        model.model_loaded.connect(lambda _name: self._measure())
        worker.approval_needed.connect(self._on_approval_needed)
        worker.tool_note.connect(self._on_tool_note)
        worker.tools_finished.connect(self._on_tools_finished)
        worker.cache_note.connect(self._on_cache_note)
        self.apply_cache_budget()

    # -- state ---------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._reply is not None

    @property
    def reasoning_level(self) -> str:
        return self.current.reasoning_level if self.current else self.draft_reasoning_level

    @property
    def chat_tools(self) -> ChatTools:
        """The open chat's tool switches (a new chat's until it is stored)."""
        return ChatTools.from_stored(self.current.tools) if self.current else self.draft_tools

    def conversations(self) -> list[ConversationRecord]:
        return self._guard(self.store.conversations, [])

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        return self._guard(lambda: self.store.search(text, limit=limit), [])

    def turns(self) -> list[Turn]:
        """The open chat's turns as stored ([] for a new chat, or when the store fails), with any
        reply the store does not have yet (a full disk) as it is in memory."""
        current = self.current
        if current is None:
            return []
        records = self._guard(lambda: self.store.messages(current.id), [])
        for recorder in self._unsaved:
            if recorder.conversation_id == current.id:
                in_memory = recorder.records(max((r.position for r in records), default=-1))
                ids = {r.id for r in in_memory}
                records = [r for r in records if r.id not in ids] + in_memory
        return group_turns(records, self._guard(lambda: self.store.versions(current.id), {}))

    @property
    def unsaved_reason(self) -> str | None:
        """Why a reply is still only in memory (None when every reply is stored)."""
        live = [self._reply.recorder] if self._reply is not None else []
        return next((recorder.error for recorder in [*self._unsaved, *live] if recorder.error), None)

    def save_unsaved(self) -> bool:
        """Write the replies the store could not take before, oldest first (on a timer, and
        before any other write, so the chat keeps its order); True when none is left."""
        while self._unsaved:
            recorder = self._unsaved[0]
            saved = recorder.sync()
            self._check_saved(recorder)
            if not saved:
                return False
            self._unsaved.pop(0)
            if self.current is not None and recorder.conversation_id == self.current.id:
                self.turns_saved.emit(self.turns())
        self._retry.stop()
        return True

    # -- conversations -------------------------------------------------------------------------

    def apply_cache_budget(self) -> None:
        """Give the engine thread Settings › Memory's disk budget for the chats' prompt caches."""
        self.engine.set_cache_budget(self.settings.chat_cache_budget_bytes())

    def open_conversation(self, conversation_id: int | None) -> None:
        left = self.current
        if conversation_id is None:
            self.current = None
            self.draft_reasoning_level = self.settings.default_reasoning_level()
            self.draft_tools = ChatTools()
        else:
            try:
                self.current = self.store.conversation(conversation_id)
            except (KeyError, StoreError) as error:
                self.error.emit(str(error))
                return
            self.settings.set_value(Key.LAST_CONVERSATION, conversation_id)
        if left is not None and left.id != conversation_id:
            self.engine.leave_chat(left.id)  # its cache to disk, behind any reply still running
        self.conversation_opened.emit(self.current, self.turns())
        self.reasoning_level_changed.emit(self.reasoning_level)
        self.chat_tools_changed.emit(self.chat_tools)
        self._measure()

    def new_conversation(self) -> None:
        """A blank chat; it is stored when its first message is sent."""
        self.open_conversation(None)

    def rename(self, conversation_id: int, title: str) -> None:
        self._guard(lambda: self.store.rename_conversation(conversation_id, title))
        if self.current and self.current.id == conversation_id:
            self.current = self.store.conversation(conversation_id)
        self.conversations_changed.emit()

    def delete(self, conversation_id: int) -> None:
        if self._reply and self._reply.conversation_id == conversation_id:
            self.error.emit("This chat is still replying. Stop the reply before deleting the chat.")
            return
        self._guard(lambda: self.store.delete_conversation(conversation_id))
        self.engine.close_tools(conversation_id)  # its kernel and MCP sessions stop
        self.engine.discard_cache(conversation_id)
        self._unsaved = [recorder for recorder in self._unsaved if recorder.conversation_id != conversation_id]
        if self.current and self.current.id == conversation_id:
            self.new_conversation()
        self.conversations_changed.emit()

    def export(self, conversation_id: int, kind: str, destination: Path) -> bool:
        try:
            conversation = self.store.conversation(conversation_id)
            records = self.store.messages(conversation_id)
            text = chat_markdown(conversation, records) if kind == "markdown" else chat_json(conversation, records)
            destination.write_text(text, encoding="utf-8")
        except (StoreError, OSError) as error:
            self.error.emit(f"Could not export the chat to {destination}: {error}")
            return False
        return True

    def set_reasoning_level(self, reasoning_level: str) -> None:
        """The reasoning level of this chat's next reply (and the draft's, before it is stored)."""
        if self.current:
            self._guard(lambda: self.store.set_reasoning_level(self.current.id, reasoning_level))
            self.current = dataclasses.replace(self.current, reasoning_level=reasoning_level)
        else:
            self.draft_reasoning_level = reasoning_level
        self.reasoning_level_changed.emit(reasoning_level)
        self._measure()

    def set_chat_tools(self, tools: ChatTools) -> None:
        """Which tools this chat offers the model from its next reply on (kept with the chat)."""
        if self.current:
            self._guard(lambda: self.store.set_tools(self.current.id, tools.stored()))
            self.current = dataclasses.replace(self.current, tools=tools.stored())
        else:
            self.draft_tools = tools
        self.chat_tools_changed.emit(tools)
        self._measure()

    # -- replies -------------------------------------------------------------------------------

    def send(self, text: str) -> None:
        if self.busy or not text.strip():
            return
        if not self.model.model_ready:
            self.error.emit("No model is loaded yet. Choose one with File › Choose Model….")
            return
        if not self.save_unsaved():
            return
        try:
            if self.current is None:
                self.current = self.store.create_conversation(
                    reasoning_level=self.draft_reasoning_level,
                    developer_instructions=self.settings.value(Key.DEVELOPER_INSTRUCTIONS) or None,
                    model=self.model.model_name,
                    title=title_from_text(text) or DEFAULT_TITLE,
                )
                self.store.set_tools(self.current.id, self.draft_tools.stored())
                self.current = self.store.conversation(self.current.id)
                self.settings.set_value(Key.LAST_CONVERSATION, self.current.id)
            elif self.current.title == DEFAULT_TITLE and not self.store.messages(self.current.id):
                self.store.rename_conversation(self.current.id, title_from_text(text))
            record = self.store.add_message(self.current.id, role="user", content=text)
        except StoreError as error:
            self.error.emit(str(error))
            return
        self.conversations_changed.emit()
        self.user_turn_added.emit(Turn("user", [record]))
        self._start_reply()

    def regenerate(self) -> None:
        """A new version of the last reply; the one shown is kept as a version to step back to."""
        if self.busy or self.current is None or not self.save_unsaved():
            return
        turns = self.turns()
        if not turns or turns[-1].role != "assistant":
            return
        try:
            self.store.keep_version(self.current.id, turns[-1].position)
        except StoreError as error:
            self.error.emit(str(error))
            return
        self.turns_truncated.emit(len(turns) - 1)
        self._start_reply()

    def edit_and_resend(self, message_id: int, text: str) -> None:
        """A new version of a user message, replied to; the message and what followed it are kept
        as a version to step back to."""
        if self.busy or self.current is None or not text.strip() or not self.save_unsaved():
            return
        turns = self.turns()
        index = next((i for i, t in enumerate(turns) if t.role == "user" and t.first_id == message_id), None)
        if index is None:
            return
        try:
            self.store.keep_version(self.current.id, turns[index].position)
            self.store.add_message(self.current.id, role="user", content=text)
        except StoreError as error:
            self.error.emit(str(error))
            return
        self.turns_truncated.emit(index)
        self.user_turn_added.emit(self.turns()[index])  # with its versions (‹ 2/2 ›)
        self._start_reply()

    def show_version(self, after_id: int | None, ordinal: int) -> None:
        """Show version `ordinal` of what follows message `after_id` (None: the chat's start);
        the prompt, exports and search results then read that version."""
        if self.busy or self.current is None or not self.save_unsaved():
            return
        self._guard(lambda: self.store.show_version(self.current.id, after_id, ordinal))
        self.conversation_opened.emit(self.current, self.turns())
        self._measure()

    def stop(self) -> None:
        if self._reply is not None:
            self.engine.cancel(self._reply.reply_id)

    def _start_reply(self) -> None:
        assert self.current is not None
        try:
            conversation = self.store.conversation(self.current.id)
            chat = chat_for(conversation, self.store.messages(conversation.id))
            tools = self._tool_request(conversation)
            model_name = self.model.model_name
            if model_name and conversation.model != model_name:
                self.store.set_model(conversation.id, model_name)
            recorder = ReplyRecorder(self.store, conversation.id, conversation.reasoning_level)
        except StoreError as error:
            self.error.emit(str(error))
            self._end_reply(None)
            return
        sent = list(chat.messages)  # the engine thread extends `chat`, so keep what was sent
        reply_id = self.engine.reply(chat, self.settings.sampling(), tools)
        self._reply = _Reply(reply_id, conversation.id, recorder, sent)
        self.busy_changed.emit(True)
        self.reply_started.emit(conversation.reasoning_level)
        self._tick.start()

    def _tool_request(self, conversation: ConversationRecord) -> ToolRequest:
        """The tools Settings › Tools allows, less those this chat switched off."""
        setup = self.settings.tool_setup().for_chat(ChatTools.from_stored(conversation.tools))
        return ToolRequest(conversation.id, setup, self.store.browser_state(conversation.id))

    def _live(self) -> bool:
        """Whether the streaming reply belongs to the chat on screen."""
        return self._reply is not None and self.current is not None and self._reply.conversation_id == self.current.id

    def _on_event(self, reply_id: int, event: object) -> None:
        reply = self._reply
        if reply is None or reply.reply_id != reply_id:
            return
        recorder = reply.recorder
        was_thinking = recorder.thinking
        try:
            if isinstance(event, MessageStart):
                recorder.start_message(event.channel, event.recipient, event.content_type)
                if event.channel == "analysis" and event.recipient is None and self._live():
                    self.reasoning_started.emit()
            elif isinstance(event, TextDelta):
                recorder.add_text(event.channel, event.text)
                if self._live():
                    if event.channel == "analysis" and recorder.recipient is None:
                        self.reasoning_text.emit(event.text)
                    elif recorder.recipient is None:
                        self.reply_text.emit(reply.visible_text())
            elif isinstance(event, MessageDone):
                recorder.finish_message(event.message)
            elif isinstance(event, ToolCall):
                if self._live():
                    self.tool_called.emit(event.recipient, event.arguments_json)
            elif isinstance(event, ToolResult):
                self._store_tool_result(reply, event)
            elif isinstance(event, ParseWarning):
                log.warning("model output: %s (skipped %r)", event.what, event.skipped)
                if self._live():
                    self.note.emit(f"Skipped malformed model output: {event.what}")
            elif isinstance(event, Stats):
                reply.stats = event
                if self._live():
                    self.stats.emit(reply.stats)
            elif isinstance(event, Done):
                reply.done = event
        except StoreError as error:
            self._report(str(error))
        self._check_saved(recorder)
        if was_thinking and not recorder.thinking and self._live():
            self.thought.emit(recorder.thought_seconds or 0.0)

    def _on_reply_failed(self, reply_id: int, message: str) -> None:
        if self._reply is not None and self._reply.reply_id == reply_id:
            self._reply.failure = message

    def _on_reply_ended(self, reply_id: int) -> None:
        reply = self._reply
        if reply is None or reply.reply_id != reply_id:
            return
        self._tick.stop()
        done = reply.done or Done("error", reply.failure or "The engine stopped without finishing the reply.")
        if reply.failure and done.reason != "error":
            done = Done("error", reply.failure)
        try:
            details = (done.detail or _DONE_DETAIL.get(done.reason), reply.left_out_notice())
            reply.recorder.finish(
                _DONE_STATUS[done.reason], detail=" ".join(part for part in details if part) or None,
                stats=dataclasses.asdict(reply.stats) if reply.stats else None,  # stored as JSON
            )
            if not reply.recorder.saved:  # kept in memory, written once the store takes it
                self._check_saved(reply.recorder)
                self._unsaved.append(reply.recorder)
                self._retry.start()
        except StoreError as error:
            self._report(str(error))
        self._end_reply(reply)

    def _store_tool_result(self, reply: _Reply, result: ToolResult) -> None:
        """A tool's reply, stored as the message the model read (its author, channel), with its
        duration and whether it worked, and the images it made; through the reply's recorder,
        so it keeps its place among the reply's rows and waits with them when the disk is full."""
        message = result.message
        reply.recorder.add_tool_result(
            author_name=message.get("name") or result.recipient, channel=message.get("channel"),
            recipient=message.get("recipient") or "assistant", content=result.text,
            stats={"seconds": result.seconds, "ok": result.ok},
            attachments={"images": [list(image) for image in result.images]} if result.images else None,
        )
        if self._live():
            self.tool_answered.emit(result.recipient, result.text, result.seconds, result.ok)

    # -- tools ---------------------------------------------------------------------------------

    def _on_approval_needed(self, reply_id: int, request: ApprovalRequest) -> None:
        """A call waits for consent: allowed already (always, or for this chat), or ask."""
        reply = self._reply
        if reply is None or reply.reply_id != reply_id:
            self.engine.answer_approval(reply_id, False)
            return
        conversation = self._guard(lambda: self.store.conversation(reply.conversation_id))
        if self.settings.approval() == "always" or (conversation and ChatTools.from_stored(conversation.tools).allowed):
            self.engine.answer_approval(reply_id, True)
            return
        reply.approval = request
        self.approval_requested.emit(request)

    def answer_approval(self, choice: str) -> None:
        """The user's answer to `approval_requested` (one of APPROVAL_CHOICES)."""
        reply = self._reply
        if reply is None or reply.approval is None:
            return
        if choice not in APPROVAL_CHOICES:
            raise ValueError(f"approval choice {choice!r} is not one of {APPROVAL_CHOICES}")
        reply.approval = None
        if choice == "always":
            self.settings.set_value(Key.APPROVAL, "always")
        elif choice == "chat":
            conversation = self._guard(lambda: self.store.conversation(reply.conversation_id))
            if conversation is not None:
                allowed = dataclasses.replace(ChatTools.from_stored(conversation.tools), allowed=True)
                self._guard(lambda: self.store.set_tools(conversation.id, allowed.stored()))
                if self._live():
                    self.current = dataclasses.replace(self.current, tools=allowed.stored())
                    self.chat_tools_changed.emit(allowed)
        self.engine.answer_approval(reply.reply_id, choice != "deny")
        self.approval_settled.emit()

    def _on_tool_note(self, reply_id: int, text: str) -> None:
        if self._reply is not None and self._reply.reply_id == reply_id and self._live():
            self.note.emit(text)

    def _on_tools_finished(self, reply_id: int, browser_state: dict | None, citations: list) -> None:
        """Keep the chat's browser pages, and the answer's citations with the answer."""
        reply = self._reply
        if reply is None or reply.reply_id != reply_id:
            return
        try:
            if browser_state is not None:
                self.store.set_browser_state(reply.conversation_id, browser_state)
            if citations:
                answers = [row for row in reply.recorder.row_ids
                           if (record := self.store.message(row)).content and not record.recipient]
                if answers:
                    self.store.update_message(answers[-1], attachments={"citations": citations})
        except (StoreError, KeyError) as error:
            self._report(str(error))

    def _on_cache_note(self, text: str) -> None:
        log.warning("%s", text)
        self.cache_note.emit(text)

    def _end_reply(self, reply: _Reply | None) -> None:
        live = self._live()
        if reply is not None and reply.approval is not None:
            self.approval_settled.emit()  # the question is moot: the reply has ended
        self._reply = None
        self.busy_changed.emit(False)
        if live:
            turns = self.turns()
            finished = turns[-1] if turns and turns[-1].role == "assistant" else None
            self.reply_finished.emit(finished)
        self.conversations_changed.emit()

    def _on_tick(self) -> None:
        if self._reply is None:
            return
        recorder = self._reply.recorder
        if recorder.error:
            recorder.sync()
        else:
            recorder.flush_if_due()
        self._check_saved(recorder)
        if recorder.thinking and self._live():
            self.thinking.emit(self._reply.recorder.thinking_seconds())

    # -- measuring -----------------------------------------------------------------------------

    def _measure(self) -> None:
        """Ask the model what the open chat (or the draft) takes of the context."""
        if self.model.model_ready and not self.busy:
            conversation = self.current
            records = self._guard(lambda: self.store.messages(conversation.id), []) if conversation else []
            if conversation is None:
                chat = Chat(reasoning_level=self.draft_reasoning_level,
                            instructions=self.settings.value(Key.DEVELOPER_INSTRUCTIONS) or None)
            else:
                chat = chat_for(conversation, records)
            self.model.measure(chat)

    # -- errors --------------------------------------------------------------------------------

    def _guard(self, action: Callable[[], Any], fallback: Any = None) -> Any:
        try:
            return action()
        except StoreError as error:
            self._report(str(error))
            return fallback

    def _report(self, message: str) -> None:
        """Tell the user once per distinct problem, not once per token."""
        if message != self._last_error:
            self._last_error = message
            self.error.emit(message)

    def _resolve(self, message: str) -> None:
        """A problem reported before is over (the banner showing it goes)."""
        if message == self._last_error:
            self._last_error = ""
        self.error_resolved.emit(message)

    def _check_saved(self, recorder: ReplyRecorder) -> None:
        """Report a reply's failed write once, and its end once every reply is written."""
        if recorder.error:
            self._write_error = recorder.error
            self._report(recorder.error)
        elif self._write_error and not self.unsaved_reason:
            self._resolve(self._write_error)
            self._write_error = None
