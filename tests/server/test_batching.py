"""Concurrent requests decode together in one forward pass per step (runner.DecodeBatch): their
greedy answers equal the same requests asked one after another, and a client leaving mid-batch
leaves the others' answers unchanged and every cache consistent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlx.core as mx
import pytest
from support.harmony_model import EXCHANGES, START_DATE
from support.served import MODEL_ID, Served

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.events import Done
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings
from gpt_oss_desktop.mlx_model.server.batching import DecodeBatch, Failure
from gpt_oss_desktop.mlx_model.server.runner import Generation, ReplyStream

JOBS = [("sum", "low", True), ("colour", "medium", False), ("sum", "low", False), ("colour", "high", True),
        ("sum", "high", True), ("colour", "low", False)]  # more than one batch holds (4)


def ask(served: Served, job: tuple[str, str, bool]) -> tuple[str, str]:
    """(reasoning, answer) of one request, over Chat Completions or a streamed Responses call."""
    name, level, chat = job
    client = served.client()
    if chat:
        message = client.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": EXCHANGES[name].question}], temperature=0,
            reasoning_effort=level).choices[0].message
        return message.model_extra["reasoning"], message.content
    events = list(client.responses.create(model=MODEL_ID, input=EXCHANGES[name].question, temperature=0,
                                          reasoning={"effort": level}, stream=True))
    return "".join(e.delta for e in events if e.type == "response.reasoning_text.delta"), events[-1].response.output_text


@pytest.fixture()
def batch_sizes(served: Served) -> Iterator[list[int]]:
    """The size of every batched step the engine runs (each a little slow, so requests overlap)."""
    engine = served.runner.engine
    run_steps = engine.run_steps
    sizes: list[int] = []

    def recorded(requests) -> None:
        sizes.append(len(requests))
        time.sleep(0.01)
        run_steps(requests)

    engine.run_steps = recorded
    yield sizes
    engine.run_steps = run_steps


def test_concurrent_requests_decoded_together_equal_requests_one_by_one(served: Served,
                                                                        batch_sizes: list[int]) -> None:
    alone = [ask(served, job) for job in JOBS]
    assert max(batch_sizes) == 1
    batch_sizes.clear()
    with ThreadPoolExecutor(len(JOBS)) as pool:
        together = list(pool.map(lambda job: ask(served, job), JOBS))
    assert together == alone == [(EXCHANGES[name].analysis, EXCHANGES[name].final) for name, _, _ in JOBS]
    assert max(batch_sizes) == served.runner.max_batch  # batched, and never past the cap
    assert served.runner.in_flight == 0


def test_a_client_leaving_mid_batch_leaves_the_others_unchanged(served: Served, batch_sizes: list[int]) -> None:
    engine = served.runner.engine
    reply = engine.reply
    endings: list[str] = []

    def watched_reply(*args, **kwargs):
        for item in reply(*args, **kwargs):
            if isinstance(item, Done):
                endings.append(item.reason)
            yield item

    left = threading.Event()

    def leave() -> None:
        stream = served.client().responses.create(model=MODEL_ID, input=EXCHANGES["colour"].question,
                                                  temperature=0, reasoning={"effort": "high"}, stream=True)
        for event in stream:
            if event.type == "response.reasoning_text.delta":
                break
        stream.close()
        left.set()

    engine.reply = watched_reply
    try:
        with ThreadPoolExecutor(4) as pool:
            leaving = pool.submit(leave)
            staying = [pool.submit(ask, served, job) for job in JOBS[:3]]
            answers = [future.result() for future in staying]
            leaving.result()
        deadline = time.monotonic() + 20
        while len(endings) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        engine.reply = reply
    assert left.is_set() and sorted(endings) == ["cancelled", "return", "return", "return"]
    assert answers == [(EXCHANGES[name].analysis, EXCHANGES[name].final) for name, _, _ in JOBS[:3]]
    assert max(batch_sizes) > 1
    assert all(layer.offset == len(entry.cache.tokens) for entry in engine.caches.entries
               for layer in entry.cache.layers)
    assert not any(entry.in_use for entry in engine.caches.entries) and served.runner.in_flight == 0


def test_replies_of_a_replaced_model_end_with_a_failure(harmony_model_dir: Path) -> None:
    """The app may load another model between two steps: the old one's replies end (their caches
    released) rather than keep its memory alive."""
    old, new = (Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32) for _ in range(2))
    loop = asyncio.new_event_loop()
    ended: list[int] = []
    batch = DecodeBatch(lambda: ended.append(1))
    chat = Chat(start_date=START_DATE, reasoning_level="low")
    chat.add_user(EXCHANGES["sum"].question)
    stream = ReplyStream(Generation(chat, SamplingSettings(temperature=0)), loop)
    batch.join(stream, old)
    batch.step(old)
    assert len(batch.running) == 1 and any(entry.in_use for entry in old.caches.entries)
    batch.step(new)
    assert not batch.running and ended == [1] and not any(entry.in_use for entry in old.caches.entries)

    async def drain() -> list:
        events = []
        while (event := await stream.next()) is not None:
            events.append(event)
        return events

    events = loop.run_until_complete(drain())
    loop.close()
    assert isinstance(events[-1], Failure) and "model was changed" in events[-1].message
