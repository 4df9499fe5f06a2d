"""Constrained replies from a random tiny model, whose unconstrained output is noise: every
answer held to a schema validates with `jsonschema`, the reasoning before it is exactly what the
model writes unconstrained, strict tool calls' arguments validate, and what cannot be held ends
with a reason that names the problem."""

from __future__ import annotations

import json

import jsonschema
import pytest
from structured_corpus import CORPUS, UNBOUNDED

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.events import Done, MessageStart, TextDelta, ToolCall
from gpt_oss_desktop.mlx_model.harmony import parse_completion, text_of
from gpt_oss_desktop.mlx_model.sampling import SamplingSettings
from gpt_oss_desktop.mlx_model.structured import ResponseFormat

SEEDS = (0, 1, 2)
BUDGET = 6


def ask(engine: Engine, response_format=None, *, seed: int = 0, budget: int | None = BUDGET, max_tokens: int = 300,
        tools=(), temperature: float = 1.0):
    conversation = Chat(start_date="2026-01-01", tools=list(tools))
    conversation.add_user("Answer, please.")
    tokens: list[int] = []
    sampling = SamplingSettings(seed=seed, max_new_tokens=max_tokens, max_reasoning_tokens=budget,
                                temperature=temperature)
    events = list(engine.reply(conversation, sampling, on_token=tokens.append, response_format=response_format))
    assert isinstance(events[-1], Done)
    return events, tokens


def answer(done: Done) -> str:
    assert done.messages[-1].get("channel") == "final"
    return text_of(done.messages[-1])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_answer_validates_against_its_schema(engine: Engine, name: str) -> None:
    schema, strict = CORPUS[name]
    response_format = ResponseFormat.json_schema(schema, name=name, strict=strict)
    for seed in SEEDS:
        events, tokens = ask(engine, response_format, seed=seed)
        done = events[-1]
        assert done.reason == "return", done.detail
        jsonschema.validate(json.loads(answer(done)), schema)
        # The parsed messages are the stream's: the constraint changes no parsing.
        assert parse_completion(tokens, engine.tokenizer) == list(done.messages)


def test_unconstrained_output_is_noise(engine: Engine) -> None:
    """The premise of the corpus test: the same model, seeds and budget give no valid JSON."""
    schema, _ = CORPUS["flat_strict"]
    for seed in SEEDS:
        done = ask(engine, seed=seed, max_tokens=40)[0][-1]
        with pytest.raises((json.JSONDecodeError, jsonschema.ValidationError)):
            jsonschema.validate(json.loads(answer(done)), schema)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_reasoning_is_what_the_model_writes_unconstrained(engine: Engine, seed: int) -> None:
    """A regex answer (no schema, so the prompt is the unconstrained run's too): up to the budget the
    tokens are the unconstrained run's, then the controller closes the reasoning and opens the
    final answer, which is held."""
    budget = 12
    events, held = ask(engine, ResponseFormat.regex("[0-9]{4}"), seed=seed, budget=budget)
    _, free = ask(engine, seed=seed, budget=None, max_tokens=budget)
    assert held[:budget] == free
    assert events[-1].reason == "return" and len(answer(events[-1])) == 4
    end, start, channel, message = (engine.tokenizer.encode_special(n) for n in
                                    ("<|end|>", "<|start|>", "<|channel|>", "<|message|>"))
    opened = [end, start, *engine.tokenizer.encode("assistant"), channel, *engine.tokenizer.encode("final"), message]
    assert held[budget : budget + len(opened)] == opened


def test_the_reasoning_budget_without_a_format_opens_a_free_final_answer(engine: Engine) -> None:
    events, tokens = ask(engine, budget=5, max_tokens=30)
    starts = [e.channel for e in events if isinstance(e, MessageStart)]
    assert starts[-1] == "final"
    assert events[-1].reason == "max_tokens"  # the answer itself is noise, and unbounded
    assert len(tokens) == 30


@pytest.mark.parametrize("seed", SEEDS)
def test_json_mode_regex_and_lark(engine: Engine, seed: int) -> None:
    done = ask(engine, ResponseFormat.json_object(), seed=seed, max_tokens=400, temperature=0.7)[0][-1]
    if done.reason == "return":  # an object may hold free strings, which a random model rarely closes
        assert isinstance(json.loads(answer(done)), dict)
    else:
        assert done.reason == "max_tokens" and "JSON mode" in done.detail
    done = ask(engine, ResponseFormat.regex(r"[A-Z]{2}-[0-9]{3}"), seed=seed)[0][-1]
    assert done.reason == "return"
    assert __import__("re").fullmatch(r"[A-Z]{2}-[0-9]{3}", answer(done))
    lark = 'start: "(" item ("," item)* ")"\nitem: /[a-c]/ | "nil"'
    done = ask(engine, ResponseFormat.lark(lark), seed=seed)[0][-1]
    assert done.reason == "return"
    assert __import__("re").fullmatch(r"\((?:[a-c]|nil)(?:,(?:[a-c]|nil))*\)", answer(done))


WEATHER = {
    "name": "get_weather",
    "description": "Gets the weather.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "pattern": "^[A-Z][a-z]{2,8}$"},
                       "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"], "additionalProperties": False,
    },
    "strict": True,
}
CLOCK = {"name": "get_time", "description": "Gets the time.", "strict": True}


def test_strict_tool_calls_go_to_a_declared_tool_with_valid_arguments(engine: Engine) -> None:
    response_format = ResponseFormat.json_schema(CORPUS["enum_colour"][0], strict=True)
    calls = []
    for seed in range(8):
        events, _ = ask(engine, response_format, seed=seed, budget=40, tools=[WEATHER, CLOCK])
        done = events[-1]
        assert done.reason in ("call", "return"), done.detail
        if done.reason == "return":
            jsonschema.validate(json.loads(answer(done)), CORPUS["enum_colour"][0])
            continue
        call = next(e for e in events if isinstance(e, ToolCall))
        assert call.error is None
        assert call.recipient in ("functions.get_weather", "functions.get_time")
        parameters = WEATHER["parameters"] if call.name == "get_weather" else {"type": "object", "properties": {},
                                                                                 "additionalProperties": False}
        jsonschema.validate(call.arguments, parameters)
        calls.append(call.name)
    assert calls, "no seed made a call: the test shows nothing"


def test_a_strict_tool_schema_outside_the_subset_is_refused(engine: Engine) -> None:
    loose = {**WEATHER, "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    done = ask(engine, tools=[loose])[0][-1]
    assert done.reason == "error"
    assert "tool 'get_weather' parameters" in done.detail and "additionalProperties" in done.detail


@pytest.mark.parametrize("name", sorted(UNBOUNDED))
def test_the_token_limit_inside_the_json_is_not_a_complete_answer(engine: Engine, name: str) -> None:
    schema, strict = UNBOUNDED[name]
    done = ask(engine, ResponseFormat.json_schema(schema, name=name, strict=strict), max_tokens=60)[0][-1]
    assert done.reason == "max_tokens"
    assert f"inside its constrained part (the JSON Schema {name!r}): it is incomplete" in done.detail
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer(done))


def test_a_grammar_that_cannot_go_on_ends_with_an_error(engine: Engine) -> None:
    """`<|end|>` inside an answer would end the message: the grammar is held to text, and after
    "a" it allows nothing."""
    done = ask(engine, ResponseFormat.lark('start: "a" <|end|>'))[0][-1]
    assert done.reason == "error"
    assert "allows no next token after 'a'" in done.detail


def test_a_schema_that_cannot_compile_is_an_error_before_any_token(engine: Engine) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "([a-z]"}}}
    events, tokens = ask(engine, ResponseFormat.json_schema(schema, name="codes"))
    assert tokens == [] and events == [events[-1]]
    assert events[-1].reason == "error" and "the JSON Schema 'codes' cannot be compiled" in events[-1].detail


def test_streamed_text_is_the_answer(engine: Engine) -> None:
    events, _ = ask(engine, ResponseFormat.json_schema(CORPUS["pattern_codes"][0], strict=True), seed=4)
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta) and e.channel == "final")
    assert streamed == answer(events[-1])
