"""Recipients and forced calls on a random tiny model: with tools declared every header the
controller lets through names a declared recipient (functions and the built-in browser and
python), `tool_choice` "required" or a named tool makes the reply that call, and a choice that
names nothing declared is refused before any token."""

from __future__ import annotations

import jsonschema
import pytest
from test_constrained_replies import CLOCK, WEATHER

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.events import Done, MessageStart, ToolCall
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings
from gpt_oss_desktop.mlx_model.structured import ResponseFormat, StructuredOutputError, StructuredPlan
from gpt_oss_desktop.mlx_model.structured.decoder import StructuredDecoder
from gpt_oss_desktop.mlx_model.tokenizer import MODEL_VOCAB_SIZE

ANSWER = ResponseFormat.json_schema({"type": "object", "properties": {"ok": {"type": "boolean"}},
                                     "required": ["ok"], "additionalProperties": False}, strict=True)


def reply(engine: Engine, *, seed: int, tools=(), builtin=(), tool_choice="auto", response_format=None,
          budget: int = 20, max_tokens: int = 120):
    chat = Chat(start_date="2026-01-01", tools=list(tools), builtin_tools=tuple(builtin))
    chat.add_user("Go.")
    sampling = SamplingSettings(seed=seed, max_new_tokens=max_tokens, max_reasoning_tokens=budget)
    events = list(engine.reply(chat, sampling, response_format=response_format, tool_choice=tool_choice))
    assert isinstance(events[-1], Done)
    return events


def recipients(events) -> list[str]:
    return [e.recipient for e in events if isinstance(e, MessageStart) and e.recipient not in (None, "all")]


def accepts(plan: StructuredPlan, header: str) -> bool:
    """Whether the controller lets the model write `header` (the text after `<|start|>assistant`
    up to `<|message|>`) as its first header, token by token."""
    decoder = StructuredDecoder(plan)
    tokens = plan.tokenizer.encoding.encode(header, allowed_special="all")
    for token_id in tokens:
        mask = decoder.next_mask()
        if mask is not None and not (int(mask.view("uint32")[token_id // 32]) >> (token_id % 32)) & 1:
            return False
        decoder.advance(token_id)
    return True


@pytest.mark.parametrize(
    ("builtin", "allowed", "refused"),
    [
        (("python",), ["python"], ["browser.search", "browser.open", "browser.find"]),
        (("browser",), ["browser.search", "browser.open", "browser.find"], ["python"]),
        (("browser", "python"), ["browser.search", "browser.find", "python"], ["browser.scroll", "functions.python"]),
    ],
)
def test_the_header_names_only_declared_builtins(real_tokenizer, builtin, allowed, refused) -> None:
    plan = StructuredPlan.build(real_tokenizer, MODEL_VOCAB_SIZE, response_format=ANSWER, tools=[CLOCK],
                                builtin_tools=builtin)
    for name in allowed + ["functions.get_time"]:
        assert accepts(plan, f"<|channel|>analysis to={name} code<|message|>"), name
        assert accepts(plan, f" to={name}<|channel|>commentary <|constrain|>json<|message|>"), name
    for name in refused + ["functions.get_weather"]:
        assert not accepts(plan, f"<|channel|>analysis to={name} code<|message|>"), name
    assert accepts(plan, "<|channel|>final <|constrain|>json<|message|>")
    assert accepts(plan, "<|channel|>analysis<|message|>")


def test_without_builtins_no_builtin_recipient(real_tokenizer) -> None:
    plan = StructuredPlan.build(real_tokenizer, MODEL_VOCAB_SIZE, response_format=ANSWER, tools=[CLOCK])
    assert not accepts(plan, "<|channel|>analysis to=python code<|message|>")
    assert not accepts(plan, "<|channel|>analysis to=browser.search code<|message|>")


def test_random_replies_call_only_declared_recipients(engine: Engine) -> None:
    declared = {"functions.get_weather", "functions.get_time", "python"}
    for seed in range(4):
        events = reply(engine, seed=seed, tools=[WEATHER, CLOCK], builtin=("python",), response_format=ANSWER,
                       tool_choice="required")
        named = recipients(events)
        assert named and set(named) <= declared, named
    # A built-in is a recipient like any other: chosen by name, the reply calls it (its code is free).
    events = reply(engine, seed=0, tools=[WEATHER], builtin=("python",), tool_choice="python", max_tokens=40)
    assert recipients(events) == ["python"]


@pytest.mark.parametrize("seed", range(4))
def test_required_makes_the_reply_a_call_with_valid_arguments(engine: Engine, seed: int) -> None:
    events = reply(engine, seed=seed, tools=[WEATHER, CLOCK], tool_choice="required", response_format=ANSWER)
    done = events[-1]
    assert done.reason == "call", done.detail
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.recipient in ("functions.get_weather", "functions.get_time") and call.error is None
    if call.recipient == "functions.get_weather":
        jsonschema.validate(call.arguments, WEATHER["parameters"])
    else:
        assert call.arguments == {}
    assert not [e for e in events if isinstance(e, MessageStart) and e.channel == "final"]


@pytest.mark.parametrize("seed", range(4))
def test_a_named_tool_is_the_one_called(engine: Engine, seed: int) -> None:
    events = reply(engine, seed=seed, tools=[WEATHER, CLOCK], tool_choice="functions.get_weather")
    assert events[-1].reason == "call", events[-1].detail
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert call.recipient == "functions.get_weather"
    jsonschema.validate(call.arguments, WEATHER["parameters"])


def test_a_budget_of_zero_goes_straight_to_the_call(engine: Engine) -> None:
    events = reply(engine, seed=0, tools=[WEATHER], tool_choice="functions.get_weather", budget=0)
    assert events[-1].reason == "call"
    starts = [e for e in events if isinstance(e, MessageStart)]
    assert [s.recipient for s in starts] == ["functions.get_weather"]


def test_a_required_call_cut_short_says_so(engine: Engine) -> None:
    events = reply(engine, seed=1, tools=[WEATHER], tool_choice="required", budget=None, max_tokens=8)
    done = events[-1]
    assert done.reason == "max_tokens"
    assert "before its required tool call" in done.detail or "inside its constrained part" in done.detail


@pytest.mark.parametrize(
    ("tools", "builtin", "choice", "message"),
    [
        ([WEATHER], (), "functions.get_time", "tool_choice 'functions.get_time' is not a declared tool"),
        ([WEATHER], (), "python", "tool_choice 'python' is not a declared tool"),
        ([], (), "required", "tool_choice 'required' needs at least one declared tool"),
    ],
)
def test_a_choice_that_names_nothing_declared_is_refused(engine: Engine, tools, builtin, choice, message) -> None:
    events = reply(engine, seed=0, tools=tools, builtin=builtin, tool_choice=choice)
    assert events == [events[-1]] and events[-1].reason == "error"
    assert message in events[-1].detail
    with pytest.raises(StructuredOutputError, match=message):
        StructuredPlan.build(engine.tokenizer, MODEL_VOCAB_SIZE, tools=tools, builtin_tools=builtin,
                             tool_choice=choice)
