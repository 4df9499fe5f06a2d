"""The one thread that drives the engine for every client, and the bridge from its events to a
request's asyncio task.

MLX arrays belong to the stream that made them, so the engine is loaded and driven on one
thread; requests wait in one first-come-first-served queue. The queue is bounded: past
`max_waiting` a request is refused at once (HTTP 429) rather than left to time out.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..chat import Chat
from ..events import Event
from ..sampling import SamplingSettings
from ..structured import ResponseFormat, ToolChoice

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
    answer held to `response_format`, a call forced by `tool_choice` (Engine.reply's)."""

    conversation: Chat
    sampling: SamplingSettings
    cancel: threading.Event = field(default_factory=threading.Event)
    response_format: ResponseFormat | None = None
    tool_choice: ToolChoice = "auto"


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


class EngineThread:
    """Loads the engine on its own thread, then runs generations one after another."""

    def __init__(self, load: Callable[[], Any], max_waiting: int = 32) -> None:
        self.max_waiting = max_waiting
        self._jobs: queue.Queue[Callable[[Any], None] | None] = queue.Queue()
        self._count_lock = threading.Lock()
        self._pending = 0  # waiting or running
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self.engine: Any = None
        self._thread = threading.Thread(target=self._run, args=(load,), name="engine", daemon=True)
        self._thread.start()
        self._loaded.wait()
        if self._load_error is not None:
            raise self._load_error

    @property
    def in_flight(self) -> int:
        """Requests waiting for the engine or being answered."""
        return self._pending

    def _run(self, load: Callable[[], Any]) -> None:
        try:
            self.engine = load()
        except BaseException as error:  # reported to the constructor's caller
            self._load_error = error
            self._loaded.set()
            return
        self._loaded.set()
        while (job := self._jobs.get()) is not None:
            try:
                job(self.engine)
            except Exception:  # a job reports its own failures; this keeps the thread alive
                log.exception("engine job failed")
            finally:
                with self._count_lock:
                    self._pending -= 1

    def submit(self, job: Callable[[Any], None]) -> None:
        """Queue `job(engine)`; raises QueueFull past the limit."""
        with self._count_lock:
            if self._pending >= self.max_waiting + 1:
                raise QueueFull(f"{self._pending} requests are already waiting for the model")
            self._pending += 1
        self._jobs.put(job)

    def generate(self, generation: Generation, loop: asyncio.AbstractEventLoop) -> ReplyStream:
        stream = ReplyStream(generation, loop)

        def job(engine: Any) -> None:
            try:
                if not generation.cancel.is_set():
                    for event in engine.reply(generation.conversation, generation.sampling, generation.cancel,
                                              response_format=generation.response_format,
                                              tool_choice=generation.tool_choice):
                        stream.push(event)
            except Exception as error:
                log.exception("generation failed")
                stream.push(Failure(f"{type(error).__name__}: {error}"))
            finally:
                stream.push(None)

        self.submit(job)
        return stream

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)
