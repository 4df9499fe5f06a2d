"""/v1/chat/completions and /v1/models through the official openai client."""

from __future__ import annotations

import json

import openai
from support.harmony_model import (
    EXCHANGES,
    WEATHER_ANALYSIS,
    WEATHER_CALL,
    WEATHER_FINAL,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    WEATHER_TOOL,
)
from support.served import MODEL_ID, Served

TOOLS = [{"type": "function", "function": WEATHER_TOOL}]


def test_reasoning_in_both_fields_never_in_content(client: openai.OpenAI) -> None:
    exchange = EXCHANGES["sum"]
    completion = client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": exchange.question}], temperature=0,
        reasoning_effort="high")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == exchange.final
    extra = choice.message.model_extra
    assert extra["reasoning"] == extra["reasoning_content"] == exchange.analysis
    assert "<|" not in choice.message.content
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 0 < usage.completion_tokens_details.reasoning_tokens < usage.completion_tokens


def test_stream_with_usage(client: openai.OpenAI) -> None:
    exchange = EXCHANGES["colour"]
    chunks = list(client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": exchange.question}], temperature=0,
        reasoning_effort="low", stream=True, stream_options={"include_usage": True}))
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert deltas[0].role == "assistant"
    content = "".join(d.content or "" for d in deltas)
    reasoning = "".join((d.model_extra or {}).get("reasoning") or "" for d in deltas)
    reasoning_content = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == reasoning_content and reasoning
    assert (reasoning, content) == (exchange.analysis, exchange.final)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_tool_call_round_trip_with_reasoning_sent_back(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": WEATHER_QUESTION}]
    first = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=TOOLS, temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert (call.type, call.function.name, call.function.arguments) == ("function", "get_weather", WEATHER_CALL)
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [
        {"role": "assistant", "content": None, "reasoning_content": choice.message.model_extra["reasoning"],
         "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": WEATHER_RESULT},
    ]
    second = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=TOOLS, temperature=0)
    assert second.choices[0].message.content == WEATHER_FINAL
    assert second.usage.prompt_tokens_details.cached_tokens > first.usage.prompt_tokens


def test_reasoning_a_client_drops_is_restored(served: Served, client: openai.OpenAI) -> None:
    """Most clients do not send the chain of thought back; gpt-oss needs it in the tool turn."""
    messages = [{"role": "user", "content": WEATHER_QUESTION}]
    first = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=TOOLS, temperature=0)
    call = first.choices[0].message.tool_calls[0]
    messages += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                 {"role": "tool", "tool_call_id": call.id, "content": WEATHER_RESULT}]
    second = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=TOOLS, temperature=0)
    assert second.choices[0].message.content == WEATHER_FINAL
    engine = served.runner.engine
    assert WEATHER_ANALYSIS in engine.tokenizer.decode(engine.last_prompt)


def test_streamed_tool_call_accumulates_by_index(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": WEATHER_QUESTION}], tools=TOOLS, temperature=0,
        stream=True))
    fragments = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert fragments[0].id.startswith("call_") and fragments[0].type == "function"
    assert fragments[0].function.name == "get_weather" and {f.index for f in fragments} == {0}
    assert "".join(f.function.arguments or "" for f in fragments) == WEATHER_CALL
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_hides_the_tools(served: Served, client: openai.OpenAI) -> None:
    client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": WEATHER_QUESTION}],
                                   tools=TOOLS, tool_choice="none", temperature=0, max_tokens=8)
    engine = served.runner.engine
    assert "get_weather" not in engine.tokenizer.decode(engine.last_prompt)


def test_system_and_developer_messages_are_the_instructions(served: Served, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL_ID, max_completion_tokens=4, temperature=0,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "developer", "content": "Answer in French."},
                  {"role": "user", "content": "Hello"}])
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 4
    engine = served.runner.engine
    prompt = engine.tokenizer.decode(engine.last_prompt)
    assert "<|start|>developer<|message|># Instructions\n\nBe brief.\n\nAnswer in French.<|end|>" in prompt


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    assert models.data[0].object == "model" and models.data[0].owned_by
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID
