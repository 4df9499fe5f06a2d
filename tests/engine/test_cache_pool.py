"""Several conversations on one engine keep their own KV state (cache_pool.CachePool): turns
taken in alternation reuse each one's history, a fork continues exactly like a cold prefill,
the budget drops the least recently used cache, and a tool-call turn stays continuable while
another conversation runs in between."""

from __future__ import annotations

import threading
from pathlib import Path

import mlx.core as mx
import pytest
from support.harmony_model import EXCHANGES, START_DATE, WEATHER_FINAL, WEATHER_QUESTION, WEATHER_RESULT, WEATHER_TOOL

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.events import Done, Stats, TextDelta, ToolCall
from gpt_oss_desktop.mlx_model.forward import ForwardPass
from gpt_oss_desktop.mlx_model.harmony import text_of
from gpt_oss_desktop.mlx_model.prompt_cache import PromptCache
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings

GREEDY = SamplingSettings(temperature=0, max_new_tokens=80)


@pytest.fixture()
def engine(harmony_model_dir: Path) -> Engine:
    return Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32)


def turn(engine: Engine, conversation: Chat, question: str | None = None, cancel=None) -> tuple[Stats, Done]:
    if question is not None:
        conversation.add_user(question)
    events = list(engine.reply(conversation, GREEDY, cancel))
    return next(e for e in events if isinstance(e, Stats)), events[-1]


def header_length(engine: Engine, level: str) -> int:
    return engine.render(Chat(start_date=START_DATE, reasoning_level=level)).header_edges[0]


def test_two_alternating_conversations_each_reuse_their_own_history(engine: Engine) -> None:
    a, b = Chat(start_date=START_DATE, reasoning_level="low"), Chat(start_date=START_DATE, reasoning_level="low")
    a_first, _ = turn(engine, a, EXCHANGES["sum"].question)
    b_first, _ = turn(engine, b, EXCHANGES["colour"].question)
    assert b_first.cached_tokens == header_length(engine, "low")  # the shared system message, forked
    a_second, _ = turn(engine, a, EXCHANGES["colour"].question)
    b_second, _ = turn(engine, b, EXCHANGES["sum"].question)
    assert a_second.cached_tokens == a_first.prompt_tokens
    assert b_second.cached_tokens == b_first.prompt_tokens
    assert [text_of(m) for m in a.messages if m.get("channel") == "final"] == [
        EXCHANGES["sum"].final, EXCHANGES["colour"].final]
    assert [text_of(m) for m in b.messages if m.get("channel") == "final"] == [
        EXCHANGES["colour"].final, EXCHANGES["sum"].final]
    assert len(engine.caches.entries) == 2


def test_a_forked_cache_continues_like_a_cold_prefill(engine: Engine) -> None:
    a = Chat(start_date=START_DATE, reasoning_level="medium")
    turn(engine, a, EXCHANGES["sum"].question)
    source = engine.cache
    before = list(source.tokens)
    other = Chat(start_date=START_DATE, reasoning_level="medium")
    other.add_user(EXCHANGES["colour"].question)
    prompt = engine.prompt_tokens(other)
    twin = source.fork(prompt)
    kept = len(twin.tokens)
    assert 0 < kept < len(prompt) and twin.tokens == prompt[:kept]
    warm = ForwardPass(engine.model, twin).prefill(prompt)
    cold = ForwardPass(engine.model, PromptCache(engine.model)).prefill(prompt)
    assert warm.reused_tokens == kept
    assert mx.abs(warm.logits - cold.logits).max().item() <= 1e-4 * mx.abs(cold.logits).max().item()
    assert source.tokens == before
    assert all(layer.offset == len(before) for layer in source.layers)  # the source is untouched


def test_the_budget_drops_the_least_recently_used_cache(engine: Engine) -> None:
    engine.caches.budget_bytes = 1 << 30
    chats = [Chat(start_date=START_DATE, reasoning_level=level) for level in ("low", "low", "medium")]
    firsts = [turn(engine, chat, EXCHANGES[name].question)[0] for chat, name in zip(chats, ("sum", "colour", "sum"))]
    assert len(engine.caches.entries) == 3
    engine.caches.budget_bytes = engine.caches.nbytes - 1  # one of the three must go: the oldest
    engine.caches.settle(engine.caches.current)
    assert len(engine.caches.entries) == 2 and engine.caches.nbytes <= engine.caches.budget_bytes
    third, _ = turn(engine, chats[2], EXCHANGES["colour"].question)
    assert third.cached_tokens == firsts[2].prompt_tokens
    first, done = turn(engine, chats[0], EXCHANGES["colour"].question)
    assert first.cached_tokens == header_length(engine, "low")  # its history was dropped
    assert text_of(chats[0].messages[-1]) == EXCHANGES["colour"].final and done.reason == "return"


def test_one_cache_budget_means_conversations_take_turns_in_it(harmony_model_dir: Path) -> None:
    engine = Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32, cache_budget_bytes=1)
    a, b = Chat(start_date=START_DATE, reasoning_level="low"), Chat(start_date=START_DATE, reasoning_level="low")
    turn(engine, a, EXCHANGES["sum"].question)
    turn(engine, b, EXCHANGES["colour"].question)
    again, _ = turn(engine, a, EXCHANGES["colour"].question)
    assert len(engine.caches.entries) == 1
    assert again.cached_tokens == header_length(engine, "low")


def test_a_tool_call_turn_survives_another_conversation_in_between(engine: Engine) -> None:
    tools = Chat(start_date=START_DATE, reasoning_level="low", tools=[WEATHER_TOOL])
    tools.add_user(WEATHER_QUESTION)
    events = list(engine.reply(tools, GREEDY))
    call = next(e for e in events if isinstance(e, ToolCall))
    first = next(e for e in events if isinstance(e, Stats))
    turn(engine, Chat(start_date=START_DATE, reasoning_level="low"), EXCHANGES["sum"].question)

    tools.add_tool_result(call.recipient, WEATHER_RESULT)
    second, done = turn(engine, tools)
    assert done.reason == "return" and text_of(tools.messages[-1]) == WEATHER_FINAL
    assert second.cached_tokens == first.prompt_tokens + first.new_tokens  # continued verbatim


def test_a_cancelled_reply_leaves_its_cache_consistent_for_both(engine: Engine) -> None:
    a, b = Chat(start_date=START_DATE, reasoning_level="high"), Chat(start_date=START_DATE, reasoning_level="high")
    b_first, _ = turn(engine, b, EXCHANGES["colour"].question)
    a.add_user(EXCHANGES["sum"].question)
    cancel = threading.Event()
    deltas = 0
    for event in engine.reply(a, GREEDY, cancel):
        deltas += isinstance(event, TextDelta)
        if deltas == 3:
            cancel.set()
    assert all(layer.offset == len(entry.cache.tokens) for entry in engine.caches.entries
               for layer in entry.cache.layers)
    a.messages = a.messages[:1]  # the cancelled reply is dropped, as the server and app do
    retried, done = turn(engine, a)
    assert done.reason == "return" and text_of(a.messages[-1]) == EXCHANGES["sum"].final
    assert retried.cached_tokens == retried.prompt_tokens  # the whole prompt, logits and all
    b_second, _ = turn(engine, b, EXCHANGES["sum"].question)
    assert b_second.cached_tokens == b_first.prompt_tokens
