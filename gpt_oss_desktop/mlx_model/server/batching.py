"""Batched decode: the replies being generated advance together, one decode step each per
forward pass.

Each reply runs (`Engine.reply(batched=True)`) up to its next decode step, a `StepRequest`; once
every reply in the batch waits on one, `Engine.run_steps` runs them all as one forward pass (the
dense layers and the MoE over the B rows, attention per row against its own cache) and each
reply reads its own logits on. A new reply joins between steps (its prefill runs then, alone);
one that ends (a stop token, a limit, its client gone) leaves and the others go on. A reply with
the server's own tools runs a tool call in place, holding the batch while the tool runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..events import Event
from ..forward import StepRequest

if TYPE_CHECKING:
    from .runner import ReplyStream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """The engine raised while generating; `message` says what."""

    message: str


@dataclass
class _Running:
    stream: ReplyStream
    items: Generator[Event | StepRequest, None, None] | None = None  # the reply, once started
    step: StepRequest | None = None  # where the reply waits


class DecodeBatch:
    """The replies decoding together on one engine, driven from its thread; `ended` is called
    once for every reply that leaves."""

    def __init__(self, ended: Callable[[], None]) -> None:
        self.running: list[_Running] = []
        self._engine: Any = None
        self._ended = ended

    def join(self, stream: ReplyStream, engine: Any) -> None:
        """Start `stream`'s generation and run it (its prefill, its first events) to its first step."""
        running = _Running(stream)
        if stream.generation.cancel.is_set():  # its client left while it waited
            self._end(running)
            return
        if engine is None:
            self._end(running, "RuntimeError: no model is loaded")
            return
        if engine is not self._engine:
            self._leave_engine("the model was changed while this request ran")
            self._engine = engine
        try:
            running.items = stream.generation.events(engine)
        except Exception as error:
            log.exception("generation failed to start")
            self._end(running, f"{type(error).__name__}: {error}")
            return
        self._advance(running)

    def step(self, engine: Any) -> None:
        """Run every reply's waiting step as one forward pass, then each reply on to its next."""
        if engine is not self._engine:
            self._leave_engine("the model was changed while this request ran")
            return
        batch = list(self.running)
        if not batch:
            return
        try:
            engine.run_steps([running.step for running in batch])
        except Exception as error:
            log.exception("a batched decode step failed")
            for running in batch:
                self._end(running, f"{type(error).__name__}: {error}")
            return
        for running in batch:
            self._advance(running)

    def _leave_engine(self, reason: str) -> None:
        """End every reply of the engine that is gone (its memory must not be kept alive)."""
        for running in list(self.running):
            self._end(running, reason)

    def _advance(self, running: _Running) -> None:
        """Pass the reply's events on until it waits on a step again, or ends."""
        try:
            for item in running.items:
                if isinstance(item, StepRequest):
                    running.step = item
                    if running not in self.running:
                        self.running.append(running)
                    return
                running.stream.push(item)
        except Exception as error:
            log.exception("generation failed")
            self._end(running, f"{type(error).__name__}: {error}")
            return
        self._end(running)

    def _end(self, running: _Running, failure: str | None = None) -> None:
        if running in self.running:
            self.running.remove(running)
        if running.items is not None:
            running.items.close()  # a reply ended early releases its cache
        self._ended()  # before the stream ends, so a client that saw its end sees it counted out
        if failure is not None:
            running.stream.push(Failure(failure))
        running.stream.push(None)
