"""The engine on a model that answers in harmony form: streaming, caching, tools, cancel, limits."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import mlx.core as mx
import pytest
from support.harmony_model import (
    EXCHANGES,
    START_DATE,
    WEATHER_CALL,
    WEATHER_FINAL,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    WEATHER_TOOL,
)

from gpt_oss_desktop.mlx_model import ExpertPaging
from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine, EngineError
from gpt_oss_desktop.mlx_model.events import Done, MessageDone, MessageStart, Stats, TextDelta, ToolCall
from gpt_oss_desktop.mlx_model.forward import ForwardPass
from gpt_oss_desktop.mlx_model.harmony import text_of
from gpt_oss_desktop.mlx_model.loader import LoadOptions, load
from gpt_oss_desktop.mlx_model.memory import resident_bytes
from gpt_oss_desktop.mlx_model.prompt_cache import PromptCache
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings

GREEDY = SamplingSettings(temperature=0, max_new_tokens=80)


@pytest.fixture()
def engine(harmony_model_dir: Path) -> Engine:
    return Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32)


def chat(level: str = "medium", **fields) -> Chat:
    return Chat(start_date=START_DATE, reasoning_level=level, **fields)


def run(engine: Engine, conversation: Chat, sampling: SamplingSettings = GREEDY, cancel=None):
    events = list(engine.reply(conversation, sampling, cancel))
    stats = next(e for e in events if isinstance(e, Stats))
    assert isinstance(events[-1], Done)
    return events, stats, events[-1]


def test_reply_streams_reasoning_then_answer(engine: Engine) -> None:
    conversation = chat("high")
    conversation.add_user(EXCHANGES["sum"].question)
    events, stats, done = run(engine, conversation)

    starts = [e.channel for e in events if isinstance(e, MessageStart)]
    assert starts == ["analysis", "final"]
    streamed = {"analysis": "", "final": ""}
    for event in events:
        if isinstance(event, TextDelta):
            streamed[event.channel] += event.text
    assert streamed == {"analysis": EXCHANGES["sum"].analysis, "final": EXCHANGES["sum"].final}
    assert done.reason == "return"
    assert [m["channel"] for m in conversation.messages[1:]] == ["analysis", "final"]
    assert stats.prompt_tokens == len(engine.last_prompt) and stats.new_tokens > 10
    assert stats.ttft_s > 0 and stats.tokens_per_s > 0 and stats.peak_memory_bytes > 0


def test_cached_turns_equal_a_cold_prefill(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over several turns, with each earlier chain of thought dropped from the history, the
    logits the cache-reusing prefill returns equal a cold prefill of the same prompt."""
    captured: list[tuple[list[int], mx.array, int]] = []
    warm_prefill = ForwardPass.prefill

    def spy(self, tokens, *args, **kwargs):
        result = warm_prefill(self, tokens, *args, **kwargs)
        captured.append((list(tokens), result.logits, result.reused_tokens))
        return result

    monkeypatch.setattr(ForwardPass, "prefill", spy)
    conversation = chat("low")
    for exchange in (EXCHANGES["sum"], EXCHANGES["colour"], EXCHANGES["sum"]):
        conversation.add_user(exchange.question)
        run(engine, conversation)

    reused = [reused for _, _, reused in captured]
    previous_prompt_lengths = [len(tokens) for tokens, _, _ in captured[:-1]]
    assert reused == [0, *previous_prompt_lengths]  # each turn continues where the last prompt ended
    for tokens, warm_logits, _ in captured[1:]:
        cold = ForwardPass(engine.model, PromptCache(engine.model)).prefill(tokens).logits
        assert mx.abs(cold - warm_logits).max().item() <= 1e-4 * mx.abs(cold).max().item()
    analysis = [m for m in conversation.messages if m.get("channel") == "analysis"]
    assert len(analysis) == 3  # kept in the conversation, dropped from the prompt
    last_prompt = engine.tokenizer.decode(captured[-1][0])
    assert EXCHANGES["sum"].analysis not in last_prompt and EXCHANGES["colour"].analysis not in last_prompt


def test_second_turn_prefills_only_the_new_turn(engine: Engine) -> None:
    conversation = chat("medium")
    conversation.add_user(EXCHANGES["sum"].question)
    _, first, _ = run(engine, conversation)
    conversation.add_user(EXCHANGES["colour"].question)
    _, second, _ = run(engine, conversation)
    assert second.cached_tokens == first.prompt_tokens
    assert second.prompt_tokens - second.cached_tokens < 25  # the final answer and the question


def test_changing_the_reasoning_level_rebuilds_from_the_system_message(engine: Engine) -> None:
    conversation = chat("high")
    conversation.add_user(EXCHANGES["sum"].question)
    run(engine, conversation)
    conversation.reasoning_level = "low"
    conversation.add_user(EXCHANGES["colour"].question)
    _, stats, _ = run(engine, conversation)
    assert stats.cached_tokens == 0  # "Reasoning:" is in the first message
    assert "Reasoning: low" in engine.tokenizer.decode(engine.last_prompt)


def test_changing_instructions_keeps_the_system_message_cached(engine: Engine) -> None:
    conversation = chat("medium", instructions="Be brief.")
    conversation.add_user(EXCHANGES["sum"].question)
    run(engine, conversation)
    conversation.instructions = "Be very brief."
    conversation.add_user(EXCHANGES["colour"].question)
    _, stats, _ = run(engine, conversation, SamplingSettings(temperature=0, max_new_tokens=3))
    system_only = chat("medium")
    system_length = engine.render(system_only).header_edges[0]  # the system message alone
    assert stats.cached_tokens == system_length


def test_tool_call_is_handed_over_and_resumed_with_the_cache_intact(engine: Engine) -> None:
    conversation = chat("low", tools=[WEATHER_TOOL])
    conversation.add_user(WEATHER_QUESTION)
    events, first, done = run(engine, conversation)
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert done.reason == "call"
    assert len(calls) == 1 and calls[0].recipient == "functions.get_weather"
    assert calls[0].arguments == {"city": "Paris"} and calls[0].arguments_json == WEATHER_CALL

    conversation.add_tool_result(calls[0].recipient, WEATHER_RESULT)
    _, second, done = run(engine, conversation)
    assert done.reason == "return"
    assert second.cached_tokens == first.prompt_tokens + first.new_tokens  # up to and with <|call|>
    assert text_of(conversation.messages[-1]) == WEATHER_FINAL


def test_cancel_between_tokens_keeps_conversation_and_cache_consistent(engine: Engine) -> None:
    conversation = chat("high")
    conversation.add_user(EXCHANGES["sum"].question)
    cancel = threading.Event()
    events = []
    for event in engine.reply(conversation, GREEDY, cancel):
        events.append(event)
        if sum(isinstance(e, TextDelta) for e in events) == 3:
            cancel.set()
    assert events[-1] == Done("cancelled", "", tuple(conversation.messages[1:]))
    partial = conversation.messages[-1]
    assert partial["channel"] == "analysis" and EXCHANGES["sum"].analysis.startswith(text_of(partial))
    assert all(layer.offset == len(engine.cache.tokens) for layer in engine.cache.layers)

    conversation.messages = conversation.messages[:1]  # the app drops the cancelled reply
    _, _, done = run(engine, conversation)
    assert done.reason == "return" and text_of(conversation.messages[-1]) == EXCHANGES["sum"].final


def test_cancel_before_the_first_token(engine: Engine) -> None:
    conversation = chat()
    conversation.add_user(EXCHANGES["sum"].question)
    cancel = threading.Event()
    cancel.set()
    events, stats, done = run(engine, conversation, cancel=cancel)
    assert done.reason == "cancelled" and stats.new_tokens == 0
    assert len(conversation.messages) == 1


def test_seeded_sampling_is_reproducible(engine: Engine) -> None:
    def sample(seed: int) -> list[str]:
        conversation = chat()
        conversation.add_user("Tell me something random.")
        settings = SamplingSettings(temperature=1.0, seed=seed, max_new_tokens=12)
        run(engine, conversation, settings)
        return [text_of(m) for m in conversation.messages[1:]]

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_token_limit_ends_with_the_partial_message_kept(engine: Engine) -> None:
    conversation = chat()
    conversation.add_user(EXCHANGES["sum"].question)
    _, stats, done = run(engine, conversation, SamplingSettings(temperature=0, max_new_tokens=5))
    assert done.reason == "max_tokens" and stats.new_tokens == 5
    assert conversation.messages[-1]["channel"] == "analysis"


def test_overflow_drops_the_oldest_turns(harmony_model_dir: Path) -> None:
    engine = Engine.load(harmony_model_dir, context_length=140, overflow="drop_oldest")
    conversation = chat("low")
    for exchange in (EXCHANGES["sum"], EXCHANGES["colour"], EXCHANGES["sum"]):
        conversation.add_user(exchange.question)
        _, stats, done = run(engine, conversation, SamplingSettings(temperature=0, max_new_tokens=30))
        assert done.reason in ("return", "max_tokens", "context_full")
    assert stats.dropped_messages > 0
    assert stats.prompt_tokens + 30 <= 140
    assert len(conversation.messages) == 9  # nothing is removed from the conversation itself


def test_overflow_stop_policy_and_a_message_too_long(harmony_model_dir: Path) -> None:
    engine = Engine.load(harmony_model_dir, context_length=160, overflow="stop")
    conversation = chat("low")
    conversation.add_user("word " * 200)
    events = list(engine.reply(conversation, GREEDY))
    assert events == [events[-1]] and events[-1].reason == "context_full"
    assert "context holds 160" in events[-1].detail


def test_context_length_outside_the_model_is_refused(harmony_model_dir: Path) -> None:
    with pytest.raises(EngineError, match="context length 999999999 is outside"):
        Engine.load(harmony_model_dir, context_length=999_999_999)


def test_message_done_events_match_the_conversation(engine: Engine) -> None:
    conversation = chat("medium")
    conversation.add_user(EXCHANGES["colour"].question)
    events, _, done = run(engine, conversation)
    done_messages = [e.message for e in events if isinstance(e, MessageDone)]
    assert done_messages == conversation.messages[1:] == list(done.messages)


def test_paging_stats_sum_the_layers_and_are_none_when_every_expert_is_resident(
    engine: Engine, harmony_model_dir: Path
) -> None:
    assert engine.paging_stats() is None
    config = engine.config
    probe = load(harmony_model_dir, dtype=mx.float32, options=LoadOptions(expert_budget_bytes=10**9))
    slot_bytes = probe.model.layers[0].mlp.experts.slot_bytes
    budget = slot_bytes * config.num_hidden_layers * config.num_experts_per_tok  # half of the 8 experts
    paged = Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32,
                        options=LoadOptions(expert_budget_bytes=budget))
    assert paged.paging_stats() == ExpertPaging()

    conversation = chat("high")
    conversation.add_user(EXCHANGES["sum"].question)
    _, first_stats, _ = run(paged, conversation)
    assert text_of(conversation.messages[-1]) == EXCHANGES["sum"].final  # paging changes no output
    after_first = paged.paging_stats()
    assert first_stats.expert_hit_rate == pytest.approx(after_first.hit_rate)  # the first reply is all there is
    conversation.add_user(EXCHANGES["sum"].question)
    _, second_stats, _ = run(paged, conversation)
    now = paged.paging_stats()
    hits, misses = now.hits - after_first.hits, now.misses - after_first.misses
    assert second_stats.expert_hit_rate == pytest.approx(hits / (hits + misses)), "this reply's uses only"

    resident = chat("low")
    resident.add_user(EXCHANGES["sum"].question)
    assert run(engine, resident)[1].expert_hit_rate is None

    assert paged.info.weights_bytes == resident_bytes(harmony_model_dir, LoadOptions(expert_budget_bytes=budget))
    assert paged.info.weights_bytes < engine.info.weights_bytes, "the automatic context counts only what is resident"

    stats = paged.paging_stats()
    layers = [layer.mlp.experts.stats for layer in paged.model.model.layers]
    assert (stats.hits, stats.misses, stats.bytes_read) == (
        sum(s.hits for s in layers), sum(s.misses for s in layers), sum(s.bytes_read for s in layers)
    )
    assert stats.hits > 0 and stats.misses > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.hits += 1000  # a value, not the engine's counters: the caller may keep it on any thread
    assert paged.paging_stats() == stats


def test_a_stop_in_the_answer_keeps_it_marked_incomplete_and_the_next_prompt_says_so(engine: Engine) -> None:
    """The engine closes the message being written as incomplete when the cancel arrives, never
    as finished; the next prompt gives it back to the model with the note."""
    from gpt_oss_desktop.mlx_model.harmony import INCOMPLETE_NOTE, is_incomplete

    exchange = EXCHANGES["sum"]
    conversation = chat("medium")
    conversation.add_user(exchange.question)
    cancel = threading.Event()
    events = []
    for event in engine.reply(conversation, GREEDY, cancel):
        events.append(event)
        if isinstance(event, TextDelta) and event.channel == "final":
            cancel.set()
    done = events[-1]
    assert done.reason == "cancelled"
    closed = [e.message for e in events if isinstance(e, MessageDone)]
    assert [m["channel"] for m in closed] == ["analysis", "final"]
    assert not is_incomplete(closed[0]) and is_incomplete(closed[1]), "only the cut message is incomplete"
    cut = conversation.messages[-1]
    assert cut is closed[1] or cut == closed[1]
    assert is_incomplete(cut) and exchange.final.startswith(text_of(cut)) and text_of(cut) != exchange.final
    assert not any(isinstance(e, ToolCall) for e in events)

    conversation.add_user(EXCHANGES["colour"].question)
    prompt = engine.tokenizer.decode(engine.prompt_tokens(conversation))
    assert text_of(cut) + INCOMPLETE_NOTE + "<|end|>" in prompt


def test_a_token_limit_in_the_middle_of_a_message_marks_it_incomplete(engine: Engine) -> None:
    from gpt_oss_desktop.mlx_model.harmony import is_incomplete

    conversation = chat()
    conversation.add_user(EXCHANGES["sum"].question)
    run(engine, conversation, SamplingSettings(temperature=0, max_new_tokens=5))
    assert is_incomplete(conversation.messages[-1])
    finished = chat()
    finished.add_user(EXCHANGES["sum"].question)
    run(engine, finished)
    assert not any(is_incomplete(m) for m in finished.messages)
