"""Structured outputs through the server with the official openai client: the Responses API's
`text.format` and Chat Completions' `response_format` hold the answer to the schema (checked with
jsonschema), streamed and not, the SDKs' `parse()` helpers read it back; `tool_choice` required or
named forces the call and strict tools hold its arguments; what cannot be enforced is a 400 that
names the field and the keyword."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import openai
import pydantic
import pytest
from support.harmony_model import EXCHANGES, WEATHER_QUESTION, WEATHER_TOOL
from support.served import MODEL_ID, Served

ANSWER = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["yes", "no", "maybe"]},
                   "count": {"type": "integer", "minimum": 0, "maximum": 9},
                   "tags": {"type": "array", "maxItems": 2, "items": {"enum": ["math", "colour"]}}},
    "required": ["verdict", "count", "tags"],
    "additionalProperties": False,
}
STRICT_WEATHER = {**WEATHER_TOOL, "strict": True, "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]}},
    "required": ["city"], "additionalProperties": False}}
QUESTION = EXCHANGES["sum"].question


class Verdict(pydantic.BaseModel):
    """What the SDKs' parse() helpers send as a strict json_schema and read back."""

    verdict: Literal["yes", "no"]
    count: int = pydantic.Field(ge=0, le=9)


VERDICT_SCHEMA = {"type": "object", "properties": {"verdict": {"enum": ["yes", "no"]},
                                                   "count": {"type": "integer", "minimum": 0, "maximum": 9}},
                  "required": ["verdict", "count"], "additionalProperties": False}


def text_format(schema=ANSWER, name: str = "answer") -> dict:
    return {"format": {"type": "json_schema", "name": name, "schema": schema, "strict": True}}


def chat_format(schema=ANSWER, name: str = "answer") -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def test_responses_text_format(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL_ID, input=QUESTION, temperature=0, text=text_format(),
                                       max_output_tokens=300)
    assert response.status == "completed", response.incomplete_details
    jsonschema.validate(json.loads(response.output_text), ANSWER)
    assert response.output[-1].type == "message" and "<|" not in response.output_text
    assert response.text.format.type == "json_schema" and response.text.format.name == "answer"


def test_responses_text_format_streamed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL_ID, input=QUESTION, temperature=0, text=text_format(),
                                          max_output_tokens=300, stream=True))
    assert events[-1].type == "response.completed"
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    jsonschema.validate(json.loads(streamed), ANSWER)
    assert streamed == events[-1].response.output_text


def test_responses_parse_helper(client: openai.OpenAI) -> None:
    response = client.responses.parse(model=MODEL_ID, input=QUESTION, temperature=0, text_format=Verdict,
                                      max_output_tokens=300)
    parsed = response.output_parsed
    assert isinstance(parsed, Verdict)
    jsonschema.validate(json.loads(response.output_text), Verdict.model_json_schema())


def test_responses_json_object(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL_ID, input=QUESTION, temperature=0,
                                       text={"format": {"type": "json_object"}}, max_output_tokens=200)
    if response.status == "completed":
        assert isinstance(json.loads(response.output_text), dict)
    else:  # free strings may run to the limit; then it is never reported complete
        assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_chat_response_format(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}],
                                                temperature=0, response_format=chat_format(), max_tokens=300)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    jsonschema.validate(json.loads(choice.message.content), ANSWER)
    assert choice.message.model_extra["reasoning"]  # the reasoning stays beside, never in content


def test_chat_response_format_streamed(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=300,
        response_format=chat_format(), stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(content), ANSWER)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_chat_parse_helper(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}],
                                               temperature=0, response_format=Verdict, max_tokens=300)
    message = completion.choices[0].message
    assert isinstance(message.parsed, Verdict)
    jsonschema.validate(json.loads(message.content), Verdict.model_json_schema())


def test_chat_parse_helper_over_an_enum_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": EXCHANGES["colour"].question}], temperature=0,
        response_format=chat_format(VERDICT_SCHEMA, "verdict"), max_tokens=300)
    Verdict.model_validate_json(completion.choices[0].message.content)
    jsonschema.validate(json.loads(completion.choices[0].message.content), VERDICT_SCHEMA)


def test_the_token_limit_is_never_a_complete_answer(client: openai.OpenAI) -> None:
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}],
                                      temperature=0, response_format=Verdict, max_tokens=12)
    response = client.responses.create(model=MODEL_ID, input=QUESTION, temperature=0, text=text_format(),
                                       max_output_tokens=12)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_the_token_limit_inside_the_json(client: openai.OpenAI) -> None:
    """Cut three tokens before the whole reply's end, so inside the JSON: incomplete, and the
    text is what was written, not a complete answer."""
    whole = client.responses.create(model=MODEL_ID, input=QUESTION, temperature=0, text=text_format(),
                                    max_output_tokens=300)
    assert whole.status == "completed"
    limit = whole.usage.output_tokens - 3
    cut = client.responses.create(model=MODEL_ID, input=QUESTION, temperature=0, text=text_format(),
                                  max_output_tokens=limit)
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    assert cut.output[-1].type == "message" and cut.output[-1].status == "incomplete"
    assert whole.output_text.startswith(cut.output_text) and cut.output_text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.output_text)
    completion = client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], temperature=0,
        response_format=chat_format(), max_tokens=limit)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == cut.output_text


def test_tool_choice_required_forces_a_call_with_valid_arguments(client: openai.OpenAI) -> None:
    """The sum question has no call in the model's script: the call is the controller's doing."""
    tools = [{"type": "function", **STRICT_WEATHER}]
    response = client.responses.create(model=MODEL_ID, input=QUESTION, temperature=0, tools=tools,
                                       tool_choice="required", max_output_tokens=200)
    calls = [item for item in response.output if item.type == "function_call"]
    assert response.status == "completed" and [c.name for c in calls] == ["get_weather"]
    jsonschema.validate(json.loads(calls[0].arguments), STRICT_WEATHER["parameters"])
    assert not [item for item in response.output if item.type == "message"]


def test_tool_choice_by_name_in_both_apis(client: openai.OpenAI) -> None:
    clock = {"name": "get_time", "description": "Gets the time.", "strict": True,
             "parameters": {"type": "object", "properties": {}, "additionalProperties": False}}
    response = client.responses.create(
        model=MODEL_ID, input=WEATHER_QUESTION, temperature=0, max_output_tokens=200,
        tools=[{"type": "function", **STRICT_WEATHER}, {"type": "function", **clock}],
        tool_choice={"type": "function", "name": "get_time"})
    assert [(i.name, json.loads(i.arguments)) for i in response.output if i.type == "function_call"] == [
        ("get_time", {})]
    chunks = list(client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=200,
        tools=[{"type": "function", "function": STRICT_WEATHER}],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True))
    calls = [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather"
    arguments = "".join(t.function.arguments or "" for t in calls)
    jsonschema.validate(json.loads(arguments), STRICT_WEATHER["parameters"])
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_strict_tool_arguments_are_held_under_auto(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": WEATHER_QUESTION}], temperature=0, max_tokens=200,
        tools=[{"type": "function", "function": STRICT_WEATHER}])
    (call,) = completion.choices[0].message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), STRICT_WEATHER["parameters"])


@pytest.mark.parametrize(("api", "extra", "param", "named"), [
    ("responses", {"text": text_format({"type": "object", "properties": {"a": {"type": "string", "minLength": 2}},
                                        "required": ["a"], "additionalProperties": False})},
     "text.format", "unsupported keyword 'minLength' at #/properties/a"),
    ("responses", {"text": text_format({"type": "object", "properties": {"a": {"type": "string"}}})},
     "text.format", "additionalProperties"),
    ("responses", {"text": {"format": {"type": "yaml"}}}, "text.format", "text.format.type"),
    ("chat", {"response_format": chat_format({"type": "object", "not": {"type": "null"}})},
     "response_format", "unsupported keyword 'not' at #"),
    ("chat", {"response_format": {"type": "json_schema"}}, "response_format", "response_format.json_schema"),
    ("chat", {"tools": [{"type": "function", "function": {**STRICT_WEATHER, "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "format": "city"}}, "required": ["city"],
        "additionalProperties": False}}}]},
     "tools[0].function.parameters", "unsupported string format 'city'"),
    ("responses", {"tools": [{"type": "function", **STRICT_WEATHER}], "tool_choice": {"type": "function",
                                                                                      "name": "get_time"}},
     "tool_choice", "'get_time', which is not in tools"),
    ("chat", {"tool_choice": "required"}, "tool_choice", "needs at least one function tool"),
    ("responses", {"tools": [{"type": "function", **STRICT_WEATHER}], "tool_choice": {"type": "web_search"}},
     "tool_choice.type", "'web_search' is not supported"),
])
def test_what_cannot_be_enforced_is_a_400_naming_it(client: openai.OpenAI, api: str, extra: dict, param: str,
                                                    named: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        if api == "responses":
            client.responses.create(model=MODEL_ID, input=QUESTION, **extra)
        else:
            client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], **extra)
    error = caught.value.body
    assert error["param"] == param and named in error["message"], error


def test_a_schema_the_library_cannot_compile_is_a_400(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "([a-z]"}},
              "required": ["code"], "additionalProperties": False}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}],
                                       response_format=chat_format(schema, "codes"))
    assert "the JSON Schema 'codes' cannot be compiled" in caught.value.body["message"]


def test_the_server_still_answers_after_refusals(served: Served) -> None:
    completion = served.client().chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], temperature=0)
    assert completion.choices[0].message.content == EXCHANGES["sum"].final
