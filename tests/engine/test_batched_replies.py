"""Replies decoded together (Engine.reply(batched=True), their steps run as one forward pass by
run_steps) equal the same replies run alone; each has a cache of its own, pinned in the pool
while it runs; one cancelled mid-batch leaves the others unchanged and every cache consistent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import mlx.core as mx
import pytest
from support.harmony_model import EXCHANGES, START_DATE

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.events import Done, Event
from gpt_oss_desktop.mlx_model.forward import StepRequest
from gpt_oss_desktop.mlx_model.harmony import text_of
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings

GREEDY = SamplingSettings(temperature=0, max_new_tokens=80)
QUESTIONS = [("sum", "low"), ("colour", "medium"), ("sum", "low"), ("colour", "high")]  # two alike


@pytest.fixture()
def engine(harmony_model_dir: Path) -> Engine:
    return Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32)


def chat(name: str, level: str) -> Chat:
    conversation = Chat(start_date=START_DATE, reasoning_level=level)
    conversation.add_user(EXCHANGES[name].question)
    return conversation


def decode_together(engine: Engine, replies: list[Iterator[Event | StepRequest]],
                    after_step=lambda step: None) -> list[list[Event]]:
    """Advance every reply to its next step, run those steps as one batch, repeat."""
    events: list[list[Event]] = [[] for _ in replies]
    pending = dict(enumerate(replies))
    step = 0
    while pending:
        requests = {}
        for index, reply in list(pending.items()):
            for item in reply:
                if isinstance(item, StepRequest):
                    requests[index] = item
                    break
                events[index].append(item)
            else:
                del pending[index]
        if requests:
            assert len({id(r.cache) for r in requests.values()}) == len(requests)  # never one cache for two
            assert all(entry.in_use for entry in engine.caches.entries if
                       any(entry.cache is r.cache for r in requests.values()))
            engine.run_steps(list(requests.values()))
            step += 1
            after_step(step)
    return events


def test_replies_decoded_together_equal_replies_alone(engine: Engine, harmony_model_dir: Path) -> None:
    alone = Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32)
    expected = []
    for name, level in QUESTIONS:
        conversation = chat(name, level)
        list(alone.reply(conversation, GREEDY))
        expected.append(conversation.messages)
    chats = [chat(name, level) for name, level in QUESTIONS]
    events = decode_together(engine, [engine.reply(c, GREEDY, batched=True) for c in chats])
    assert [c.messages for c in chats] == expected
    assert [e[-1].reason for e in events] == ["return"] * len(QUESTIONS)
    assert [text_of(c.messages[-1]) for c in chats] == [EXCHANGES[name].final for name, _ in QUESTIONS]
    assert not any(entry.in_use for entry in engine.caches.entries)  # all released


def test_a_reply_cancelled_mid_batch_leaves_the_others_unchanged(engine: Engine) -> None:
    chats = [chat(name, level) for name, level in QUESTIONS[:3]]
    cancel = threading.Event()
    replies = [engine.reply(c, GREEDY, cancel if i == 1 else None, batched=True) for i, c in enumerate(chats)]
    events = decode_together(engine, replies, after_step=lambda step: step == 5 and cancel.set())
    assert [e[-1].reason for e in events] == ["return", "cancelled", "return"]
    assert [text_of(c.messages[-1]) for c in (chats[0], chats[2])] == [EXCHANGES["sum"].final] * 2
    assert all(layer.offset == len(entry.cache.tokens) for entry in engine.caches.entries
               for layer in entry.cache.layers)
    chats[1].messages = chats[1].messages[:1]  # the cancelled reply is dropped, as the server does
    retried = list(engine.reply(chats[1], GREEDY))
    assert isinstance(retried[-1], Done) and text_of(chats[1].messages[-1]) == EXCHANGES["colour"].final


def test_pinned_caches_outlive_the_budget_until_released(engine: Engine) -> None:
    engine.caches.budget_bytes = 1  # room for one cache: the others go as soon as they are free
    chats = [chat(name, level) for name, level in QUESTIONS[:2]]
    replies = [engine.reply(c, GREEDY, batched=True) for c in chats]
    first = [next(item for item in reply if isinstance(item, StepRequest)) for reply in replies]
    assert len(engine.caches.entries) == 2 and all(entry.in_use for entry in engine.caches.entries)
    engine.run_steps(first)
    for reply in replies:
        for item in reply:
            if isinstance(item, StepRequest):
                engine.run_steps([item])
    assert len(engine.caches.entries) == 1 and not engine.caches.entries[0].in_use
