"""The one thread that drives the engine for every client (the server's own, or the app's engine
worker), and the bridge from its events to a request's asyncio task.

MLX arrays belong to the stream that made them, so the engine is loaded and driven on one
thread. Up to `max_batch` replies decode together (batching.DecodeBatch); the others wait in one
first-come-first-served queue and join as replies leave. The queue is bounded: past
`max_waiting` a request is refused at once (HTTP 429) rather than left to time out.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ..chat import Chat
from ..events import Event
from ..forward import StepRequest
from ..sampling import SamplingSettings
from ..structured import ResponseFormat, ToolChoice
from .batching import DecodeBatch, Failure
from .hosted_tools import ServerTools

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the server accepts."""


DEFAULT_MAX_BATCH = 4  # bench/README.md, batch.py and serve.py: where batching pays on this backend


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

    def events(self, engine: Any) -> Generator[Event | StepRequest, None, None]:
        """The reply's events, and each decode step for the batch to run (Engine.reply's `batched`)."""
        if self.tools is not None:
            return self.tools.reply(engine, self.conversation, self.sampling, self.cancel, self.response_format)
        return engine.reply(self.conversation, self.sampling, self.cancel, response_format=self.response_format,
                            tool_choice=self.tool_choice, batched=True, keep_on_disk=True)


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
    """Hands requests to the thread that drives an engine, at most `max_waiting` waiting beside
    the `max_batch` being answered.

    `put` queues a job on that thread, which calls it with the engine (None while no model is
    loaded); `engine` reads the current one. `EngineThread` is a thread of the server's own; the
    app passes its engine worker's queue instead, so the server and the chat share one model and
    take turns in arrival order: the batch takes one decode step per job and queues the next
    behind whatever came meanwhile (a chat reply runs between two steps).
    """

    def __init__(self, put: Callable[[Job], None], engine: Callable[[], Any], max_waiting: int = 32,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self.max_waiting = max_waiting
        self.max_batch = max_batch
        self._put = put
        self._engine = engine
        self._lock = threading.Lock()
        self._pending = 0  # waiting or running
        self._joining: deque[ReplyStream] = deque()  # generations waiting for room in the batch
        self._stepping = False  # a batch step is queued or running
        self._batch = DecodeBatch(self._finished)

    @property
    def engine(self) -> Any:
        return self._engine()

    @property
    def in_flight(self) -> int:
        """Requests waiting for the engine or being answered."""
        return self._pending

    def _reserve(self) -> None:
        with self._lock:
            if self._pending >= self.max_waiting + self.max_batch:
                raise QueueFull(f"{self._pending} requests are already waiting for the model")
            self._pending += 1

    def _finished(self) -> None:
        with self._lock:
            self._pending -= 1

    def submit(self, job: Job) -> None:
        """Queue `job(engine)`; raises QueueFull past the limit."""
        self._reserve()

        def counted(engine: Any) -> None:
            try:
                job(engine)
            finally:
                self._finished()

        self._put(counted)

    def generate(self, generation: Generation, loop: asyncio.AbstractEventLoop) -> ReplyStream:
        """Queue `generation` to join the batch; raises QueueFull past the limit."""
        stream = ReplyStream(generation, loop)
        self._reserve()
        with self._lock:
            self._joining.append(stream)
            start, self._stepping = not self._stepping, True
        if start:
            self._put(self._step)
        return stream

    def _step(self, engine: Any) -> None:
        """On the engine thread: let waiting generations join while there is room (each
        prefills now), run one decode step of the batch, and queue the next step while any
        generation is left."""
        try:
            while len(self._batch.running) < self.max_batch:
                with self._lock:
                    if not self._joining:
                        break
                    stream = self._joining.popleft()
                self._batch.join(stream, engine)
            self._batch.step(engine)
        finally:
            with self._lock:
                self._stepping = bool(self._batch.running or self._joining)
                again = self._stepping
            if again:
                self._put(self._step)

    def close(self) -> None:
        """Nothing to stop: the thread belongs to whoever passed `put`."""


class EngineThread(EngineRunner):
    """Loads the engine on a thread of its own, then runs the batch's steps and other jobs in turn."""

    def __init__(self, load: Callable[[], Any], max_waiting: int = 32, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._loaded_engine: Any = None
        super().__init__(self._jobs.put, lambda: self._loaded_engine, max_waiting, max_batch)
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

    def close(self, last: Job | None = None) -> None:
        """Stop the thread once the queued jobs are done; `last` runs after them (the server's
        shutdown writes its prompt caches to disk), and is waited for longer."""
        if last is not None:
            self._jobs.put(last)
        self._jobs.put(None)
        self._thread.join(timeout=10 if last is None else 600)
