"""The engine's one thread: it loads the model, generates replies and measures, and reports back
with Qt signals. Nothing here touches a widget or the store.

MLX arrays belong to the thread that made them, so every engine call runs on this one thread.
The GUI calls `EngineHost`, whose signals queue the work here; cancelling is the exception: it
sets a `threading.Event` directly, because the thread is busy inside the reply loop, and the
engine checks that event between tokens. Tools run here too, in the engine's tool loop (the chats'
toolboxes are kept by `ToolHost`); a call that needs the user's consent is put to the GUI with
`approval_needed`, and this thread waits for `answer_approval` (or a cancel) without blocking it.
The chats' prompt caches are written to disk and read back here too (`ChatCaches`): a chat's
before its reply, all of them before another model loads and when the thread is shut down.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from PySide6.QtCore import QObject, Qt, Signal, Slot

from gpt_oss_desktop.mlx_model import (
    ApprovalRequest,
    Chat,
    LoadOptions,
    SamplingSettings,
    Stats,
    Toolbox,
    declare_tools,
    reply_with_tools,
    text_of,
)

from .chat_caches import DEFAULT_BUDGET_BYTES, ChatCaches
from .chat_tools import ToolHost, ToolRequest, cited_sources
from .threads import start_in_thread, stop_thread

log = logging.getLogger(__name__)

CACHE_SAVE_LIMIT_S = 300.0
"""How long quitting waits for the chats' prompt caches to be written once writing has begun
(gigabytes for a long chat; the chats themselves are already in the store)."""


class EngineApi(NamedTuple):
    """How the worker makes an engine, and which errors carry a message for the user."""

    load: Callable[..., Any]  # Engine.load(path, *, context_length, options, progress)
    error: type[Exception]  # EngineError: its message is for the user


def mlx_engine_api() -> EngineApi:
    from gpt_oss_desktop.mlx_model import Engine, EngineError

    return EngineApi(Engine.load, EngineError)


class EngineWorker(QObject):
    loading = Signal(str, float)  # what is happening, fraction done
    loaded = Signal(object)  # ModelInfo
    load_failed = Signal(str)
    event = Signal(int, object)  # reply id, an mlx_model.Event
    reply_failed = Signal(int, str)
    reply_ended = Signal(int)
    approval_needed = Signal(int, object)  # reply id, mlx_model.ApprovalRequest
    tool_note = Signal(int, str)  # reply id, what could not be set up
    # reply id, the chat's browser pages (Browser.state(), None: no browser), the citations in
    # the answers (chat_tools.cited_sources)
    tools_finished = Signal(int, object, object)
    # context tokens used, context limit, memory in use (bytes), mlx_model.ExpertPaging or
    # None (every expert resident)
    measured = Signal(int, int, int, object)
    cache_note = Signal(str)  # a chat's saved prompt cache was refused (why): the chat is read afresh

    def __init__(self, api_factory: Callable[[], EngineApi] = mlx_engine_api) -> None:
        super().__init__()
        self._api_factory = api_factory
        self._api: EngineApi | None = None
        self._engine: Any = None
        self._cancels: dict[int, threading.Event] = {}
        self._approvals: dict[int, tuple[threading.Event, list[bool]]] = {}
        self._lock = threading.Lock()
        self.tools = ToolHost()
        self.caches = ChatCaches(DEFAULT_BUDGET_BYTES)

    @property
    def engine(self) -> Any:
        """The loaded engine, for diagnostics once no reply runs (it belongs to this thread)."""
        return self._engine

    def cancel(self, reply_id: int) -> None:
        """Thread-safe: stops reply `reply_id` at its next token, even before it has started."""
        self._cancel_event(reply_id).set()

    def answer_approval(self, reply_id: int, allowed: bool) -> None:
        """Thread-safe: the user's answer to the call reply `reply_id` is waiting on."""
        with self._lock:
            waiting = self._approvals.get(reply_id)
        if waiting is not None:
            waiting[1].append(allowed)
            waiting[0].set()

    def cancel_all(self) -> None:
        """Thread-safe: stops whatever reply is running or queued."""
        with self._lock:
            pending = list(self._cancels.values())
        for event in pending:
            event.set()

    def _cancel_event(self, reply_id: int) -> threading.Event:
        with self._lock:
            return self._cancels.setdefault(reply_id, threading.Event())

    @Slot(str, object, object)
    def load(self, path: str, context_length: int | None, options: LoadOptions) -> None:
        self.caches.save_all(self._engine)  # the old model's caches, before its memory goes
        self._engine = None  # free the old model's memory before reading the new one
        self.tools.close_all()  # kernels and MCP sessions are made again for the next model's chats
        try:
            api = self._api = self._api or self._api_factory()
            self._engine = api.load(path, context_length=context_length, options=options, progress=self.loading.emit)
            self.caches.attach(self._engine)
        except Exception as error:  # the thread must survive any failure
            self.load_failed.emit(self._describe(error, f"Could not load the model at {path}"))
            return
        self.loaded.emit(self._engine.info)
        self._report_measures(0)

    @Slot(int, object, object, object)
    def reply(self, reply_id: int, chat: Chat, sampling: SamplingSettings, tools: ToolRequest | None) -> None:
        """`chat` is this reply's own (the engine appends the reply to it): nothing else holds it.
        The reply runs through the engine's tool loop: with `tools`, the chat's toolbox answers
        the model's calls; without, an empty one answers any call with an error."""
        cancel = self._cancel_event(reply_id)
        toolbox = None
        try:
            if self._engine is None:
                raise RuntimeError("no model is loaded")
            if tools is not None:
                toolbox, notes = self.tools.toolbox(tools)
                for note in notes:
                    self.tool_note.emit(reply_id, note)
            box = toolbox or Toolbox(python=False)
            declare_tools(chat, box)
            if tools is not None:  # the chat as the reply renders it, so its saved prefix matches
                note = self.caches.restore(self._engine, tools.conversation_id, chat)
                if note:
                    self.cache_note.emit(note)
            sent = len(chat.messages)
            stats: Stats | None = None
            approve = lambda request: self._ask(reply_id, request, cancel)  # noqa: E731
            for event in reply_with_tools(self._engine, chat, box, sampling, cancel, approve):
                stats = event if isinstance(event, Stats) else stats
                self.event.emit(reply_id, event)
            if toolbox is not None:
                answers = [text_of(m) for m in chat.messages[sent:] if m.get("role") == "assistant"
                           and not m.get("recipient") and m.get("channel") != "analysis"]
                self.tools_finished.emit(reply_id, self.tools.browser_state(tools.conversation_id),
                                         cited_sources(answers, toolbox))
            # Stats say what the chat takes now; only a reply refused before it started has none.
            self._report_measures(stats.chat_tokens if stats else self._engine.count_tokens(chat))
        except Exception as error:
            self.reply_failed.emit(reply_id, self._describe(error, "The reply failed"))
        finally:
            if tools is not None and self._engine is not None:
                self.caches.replied(tools.conversation_id, chat)  # even a stopped reply grew the cache
            with self._lock:
                self._cancels.pop(reply_id, None)
            self.reply_ended.emit(reply_id)

    def _ask(self, reply_id: int, request: ApprovalRequest, cancel: threading.Event) -> bool:
        """Put the call to the GUI and wait for the answer; a stopped reply counts as no."""
        answered: tuple[threading.Event, list[bool]] = (threading.Event(), [])
        with self._lock:
            self._approvals[reply_id] = answered
        try:
            self.approval_needed.emit(reply_id, request)
            while not answered[0].wait(0.1):
                if cancel.is_set():
                    return False
            return answered[1][0]
        finally:
            with self._lock:
                self._approvals.pop(reply_id, None)

    @Slot(int)
    def close_tools(self, conversation_id: int) -> None:
        self.tools.close(conversation_id)

    @Slot(int)
    def save_cache(self, conversation_id: int) -> None:
        self.caches.save(self._engine, conversation_id)

    @Slot(int)
    def discard_cache(self, conversation_id: int) -> None:
        self.caches.discard(conversation_id)

    @Slot(object)
    def set_cache_budget(self, budget_bytes: int) -> None:
        self.caches.budget_bytes = budget_bytes

    @Slot(object, object)
    def save_all_caches(self, started: threading.Event, finished: threading.Event) -> None:
        """Write every chat's changed cache (the app is quitting); the events say how far it got."""
        started.set()
        try:
            self.caches.save_all(self._engine)
        finally:
            finished.set()

    @Slot(object)
    def run(self, job: Callable[[Any], None]) -> None:
        """Run `job(engine)` here (None while no model is loaded): the local server's requests,
        queued in turn with the chat's replies."""
        try:
            job(self._engine)
        except Exception:  # a job reports its own failures; the thread must survive
            log.exception("engine job failed")

    @Slot(object)
    def measure(self, chat: Chat) -> None:
        """How much of the context a chat takes (for the status bar)."""
        if self._engine is None:
            return
        try:
            used = self._engine.count_tokens(chat)
        except Exception:
            log.exception("could not measure the conversation")
            return
        self._report_measures(used)

    def _report_measures(self, used: int) -> None:
        engine = self._engine
        self.measured.emit(used, engine.info.context_limit, engine.memory_in_use(), engine.paging_stats())

    def _describe(self, error: Exception, context: str) -> str:
        if self._api is not None and isinstance(error, self._api.error):
            return str(error)
        log.exception(context)
        return f"{context}: {error}"


class EngineHost(QObject):
    """The GUI thread's handle on the worker: queues work onto its thread and hands out reply ids."""

    _load = Signal(str, object, object)
    _reply = Signal(int, object, object, object)
    _close_tools = Signal(int)
    _measure = Signal(object)
    _run = Signal(object)
    _save_cache = Signal(int)
    _discard_cache = Signal(int)
    _set_cache_budget = Signal(object)  # bytes: past a C int
    _save_all_caches = Signal(object, object)

    def __init__(self, worker: EngineWorker | None = None) -> None:
        super().__init__()
        self.worker = worker or EngineWorker()
        self._ids = itertools.count(1)
        self._load.connect(self.worker.load)
        self._reply.connect(self.worker.reply)
        self._close_tools.connect(self.worker.close_tools)
        self._measure.connect(self.worker.measure)
        self._run.connect(self.worker.run)
        self._save_cache.connect(self.worker.save_cache)
        self._discard_cache.connect(self.worker.discard_cache)
        self._set_cache_budget.connect(self.worker.set_cache_budget)
        self._save_all_caches.connect(self.worker.save_all_caches)
        self.thread = start_in_thread(self.worker, "engine")
        # The chats' kernels and MCP servers stop on the engine thread as it ends (on quit).
        self.thread.finished.connect(self.worker.tools.close_all, Qt.ConnectionType.DirectConnection)

    def load(self, path: str, context_length: int | None, options: LoadOptions) -> None:
        self._load.emit(path, context_length, options)

    def reply(self, chat: Chat, sampling: SamplingSettings, tools: ToolRequest | None = None) -> int:
        """Queue a reply to `chat`, which the caller hands over (the engine extends it)."""
        reply_id = next(self._ids)
        self._reply.emit(reply_id, chat, sampling, tools)
        return reply_id

    def cancel(self, reply_id: int) -> None:
        self.worker.cancel(reply_id)

    def answer_approval(self, reply_id: int, allowed: bool) -> None:
        self.worker.answer_approval(reply_id, allowed)

    def close_tools(self, conversation_id: int) -> None:
        """Stop a chat's kernel and MCP sessions (the chat was deleted)."""
        self._close_tools.emit(conversation_id)

    def measure(self, chat: Chat) -> None:
        self._measure.emit(chat)

    def run(self, job: Callable[[Any], None]) -> None:
        """Thread-safe: queue `job(engine)` on the engine thread, after what is queued already."""
        self._run.emit(job)

    def leave_chat(self, conversation_id: int) -> None:
        """The chat is no longer on screen: write its prompt cache if a reply changed it."""
        self._save_cache.emit(conversation_id)

    def discard_cache(self, conversation_id: int) -> None:
        """The chat was deleted: remove its saved prompt cache."""
        self._discard_cache.emit(conversation_id)

    def set_cache_budget(self, budget_bytes: int) -> None:
        """The disk the chats' saved prompt caches may take (Settings › Memory)."""
        self._set_cache_budget.emit(budget_bytes)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Write the chats' changed prompt caches, then stop the thread; False if it is still
        inside a call that cannot be interrupted (then nothing is written: the chats are safe in
        the store, only their caches are read afresh next time)."""
        self.worker.cancel_all()
        if self.thread.isRunning():
            started, finished = threading.Event(), threading.Event()
            self._save_all_caches.emit(started, finished)  # after the stopped reply ends
            if started.wait(timeout_ms / 1000):
                finished.wait(CACHE_SAVE_LIMIT_S)
        return stop_thread(self.thread, timeout_ms)
