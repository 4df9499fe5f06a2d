"""The one thread that drives the engine for every client (the server's own, or the app's engine
worker), and the bridge from its events to a request's asyncio task.

MLX arrays belong to the stream that made them, so the engine is loaded and driven on one
thread; requests wait in one first-come-first-served queue. The queue is bounded: past
`max_waiting` a request is refused at once (HTTP 429) rather than left to time out.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..chat import Chat
from ..events import Event
from ..sampling import SamplingSettings
from ..structured import ResponseFormat, ToolChoice
from .hosted_tools import ServerTools

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the server accepts."""


@dataclass(frozen=True)
class Failure:
    """The engine raised while generating; `message` says what."""

    message: str


@dataclass
class Generation:
    """One reply to generate: the engine appends the reply's messages to `conversation`; the
    answer held to `response_format`, a call forced by `tool_choice` (Engine.reply's); with
    `tools` (the server's own) their calls are answered within the reply."""

    conversation: Chat
    sampling: SamplingSettings
    cancel: threading.Event = field(default_factory=threading.Event)
    response_format: ResponseFormat | None = None
    tool_choice: ToolChoice = "auto"
    tools: ServerTools | None = None

    def events(self, engine: Any) -> Iterator[Event]:
        if self.tools is not None:
            return self.tools.reply(engine, self.conversation, self.sampling, self.cancel, self.response_format)
        return engine.reply(self.conversation, self.sampling, self.cancel, response_format=self.response_format,
                            tool_choice=self.tool_choice)


class ReplyStream:
    """Events of one generation as they arrive, for an asyncio consumer; cancelling it (the
    client went away) sets the generation's cancel event, which the engine checks per token."""

    def __init__(self, generation: Generation, loop: asyncio.AbstractEventLoop) -> None:
        self.generation = generation
        self._loop = loop
        self._events: asyncio.Queue[Event | Failure | None] = asyncio.Queue()

    def push(self, event: Event | Failure | None) -> None:
        """Called on the engine thread; None ends the stream."""
        self._loop.call_soon_threadsafe(self._events.put_nowait, event)

    async def next(self) -> Event | Failure | None:
        """The next event; None once the generation has ended."""
        return await self._events.get()

    def cancel(self) -> None:
        self.generation.cancel.set()


Job = Callable[[Any], None]


class EngineRunner:
    """Hands requests to the thread that drives an engine, at most `max_waiting` waiting.

    `put` queues a job on that thread, which calls it with the engine (None while no model is
    loaded); `engine` reads the current one. `EngineThread` is a thread of the server's own; the
    app passes its engine worker's queue instead, so the server and the chat share one model and
    take turns in arrival order.
    """

    def __init__(self, put: Callable[[Job], None], engine: Callable[[], Any], max_waiting: int = 32) -> None:
        self.max_waiting = max_waiting
        self._put = put
        self._engine = engine
        self._count_lock = threading.Lock()
        self._pending = 0  # waiting or running

    @property
    def engine(self) -> Any:
        return self._engine()

    @property
    def in_flight(self) -> int:
        """Requests waiting for the engine or being answered."""
        return self._pending

    def submit(self, job: Job) -> None:
        """Queue `job(engine)`; raises QueueFull past the limit."""
        with self._count_lock:
            if self._pending >= self.max_waiting + 1:
                raise QueueFull(f"{self._pending} requests are already waiting for the model")
            self._pending += 1

        def counted(engine: Any) -> None:
            try:
                job(engine)
            finally:
                with self._count_lock:
                    self._pending -= 1

        self._put(counted)

    def generate(self, generation: Generation, loop: asyncio.AbstractEventLoop) -> ReplyStream:
        stream = ReplyStream(generation, loop)

        def job(engine: Any) -> None:
            try:
                if engine is None:
                    raise RuntimeError("no model is loaded")
                if not generation.cancel.is_set():
                    for event in generation.events(engine):
                        stream.push(event)
            except Exception as error:
                log.exception("generation failed")
                stream.push(Failure(f"{type(error).__name__}: {error}"))
            finally:
                stream.push(None)

        self.submit(job)
        return stream

    def close(self) -> None:
        """Nothing to stop: the thread belongs to whoever passed `put`."""


class EngineThread(EngineRunner):
    """Loads the engine on a thread of its own, then runs generations one after another."""

    def __init__(self, load: Callable[[], Any], max_waiting: int = 32) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._loaded_engine: Any = None
        super().__init__(self._jobs.put, lambda: self._loaded_engine, max_waiting)
        self._thread = threading.Thread(target=self._run, args=(load,), name="engine", daemon=True)
        self._thread.start()
        self._loaded.wait()
        if self._load_error is not None:
            raise self._load_error

    def _run(self, load: Callable[[], Any]) -> None:
        try:
            self._loaded_engine = load()
        except BaseException as error:  # reported to the constructor's caller
            self._load_error = error
            self._loaded.set()
            return
        self._loaded.set()
        while (job := self._jobs.get()) is not None:
            try:
                job(self._loaded_engine)
            except Exception:  # a job reports its own failures; this keeps the thread alive
                log.exception("engine job failed")

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)
