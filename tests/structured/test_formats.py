"""Response formats as requests carry them, the Structured Outputs schema subset, and the
`# Response Formats` section, rendered token for token as openai-harmony renders it."""

from __future__ import annotations

import pytest
from openai_harmony import Conversation, HarmonyEncodingName, Message, Role, load_harmony_encoding
from structured_corpus import CORPUS, UNBOUNDED

from gpt_oss_desktop.mlx_model.harmony import developer_message, render_for_completion, system_message, user_message
from gpt_oss_desktop.mlx_model.structured import (
    ResponseFormat,
    StructuredOutputError,
    check_schema,
    with_response_format,
)

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": False}


def test_chat_completions_and_responses_shapes() -> None:
    chat = ResponseFormat.from_chat_completions(
        {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True, "description": "d"}}
    )
    responses = ResponseFormat.from_responses_text_format(
        {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True, "description": "d"}
    )
    assert chat == responses == ResponseFormat.json_schema(SCHEMA, name="answer", description="d", strict=True)
    assert chat.schema == SCHEMA and chat.strict
    assert ResponseFormat.from_chat_completions({"type": "json_object"}) == ResponseFormat.json_object()
    assert ResponseFormat.from_chat_completions({"type": "text"}) is None
    assert ResponseFormat.from_responses_text_format(None) is None
    assert hash(chat) == hash(responses)  # compiled grammars are cached by value


@pytest.mark.parametrize(
    ("request_format", "named"),
    [
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema is required"),
        ({"type": "json_schema", "json_schema": {"name": "a b", "schema": SCHEMA}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": "yes"}},
         "response_format.json_schema.strict"),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": [1]}}, "response_format.json_schema.schema"),
    ],
)
def test_malformed_requests_name_the_field(request_format: dict, named: str) -> None:
    with pytest.raises(StructuredOutputError, match=named.replace(".", r"\.")):
        ResponseFormat.from_chat_completions(request_format)


@pytest.mark.parametrize(
    ("keyword", "node"),
    [
        ("allOf", {"allOf": [{"type": "string"}]}),
        ("not", {"not": {"type": "string"}}),
        ("minLength", {"type": "string", "minLength": 2}),
        ("uniqueItems", {"type": "array", "uniqueItems": True}),
        ("patternProperties", {"type": "object", "patternProperties": {"^a": {}}}),
        ("if", {"if": {"type": "string"}, "then": {}}),
        ("oneOf", {"oneOf": [{"type": "string"}]}),
    ],
)
def test_unsupported_keywords_are_named_with_their_place(keyword: str, node: dict) -> None:
    schema = {"type": "object", "properties": {"field": node}}
    with pytest.raises(StructuredOutputError, match=rf"unsupported keyword '{keyword}' at #/properties/field"):
        ResponseFormat.json_schema(schema)


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, "additionalProperties to false"),
        ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"],
          "additionalProperties": False}, "'b' is not"),
        ({"anyOf": [SCHEMA]}, "the root must be"),
        ({"type": "object", "properties": {"inner": {"type": "object", "properties": {}}}, "required": ["inner"],
          "additionalProperties": False}, r"object at #/properties/inner"),
    ],
)
def test_strict_rules(schema: dict, problem: str) -> None:
    with pytest.raises(StructuredOutputError, match=problem):
        ResponseFormat.json_schema(schema, strict=True)
    if "root" not in problem:
        ResponseFormat.json_schema(schema, strict=False)  # the same schema is fine without strict


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "strin"}, "unknown type 'strin' at #"),
        ({"type": "string", "format": "phone"}, "unsupported string format 'phone'"),
        ({"type": "integer", "pattern": "^a$"}, "'pattern' at # needs type string"),
        ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}, "must point inside"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "points to nothing"),
        ({"type": "array", "maxItems": -1}, "maxItems at # must be a non-negative integer"),
        ({"enum": []}, "enum at # must be a non-empty list"),
    ],
)
def test_malformed_schemas(schema: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_schema(schema)


def test_the_corpus_is_in_the_subset() -> None:
    for schema, strict in {**CORPUS, **UNBOUNDED}.values():
        check_schema(schema, strict=strict)


@pytest.mark.parametrize("instructions", [None, "Answer in JSON."])
@pytest.mark.parametrize("tools", [None, [{"name": "lookup", "description": "Looks up.", "parameters": SCHEMA}]])
def test_response_formats_section_renders_as_openai_harmony_does(instructions, tools, real_tokenizer) -> None:
    response_format = ResponseFormat.json_schema(
        {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}}}},
        name="shopping_list", description="entries on the shopping list",
    )
    header = [system_message()] + ([developer_message(instructions, tools)] if instructions or tools else [])
    messages = with_response_format(header, response_format) + [user_message("Milk and eggs.")]
    ours = render_for_completion(messages, real_tokenizer)
    harmony = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    convo = Conversation.from_messages([Message.from_dict(m) for m in messages])
    assert ours == harmony.render_conversation_for_completion(convo, Role.ASSISTANT)
    developer = real_tokenizer.decode(ours).split("<|start|>developer<|message|>")[1].split("<|end|>")[0]
    assert developer.endswith(
        "# Response Formats\n\n## shopping_list\n\n// entries on the shopping list\n"
        '{"type":"object","properties":{"items":{"type":"array","items":{"type":"string"}}}}'
    )
    assert ("\n\n# Response Formats" in developer) == bool(instructions or tools)


def test_only_a_schema_is_told_to_the_model() -> None:
    header = [system_message()]
    assert with_response_format(header, ResponseFormat.json_object()) == header
    assert with_response_format(header, ResponseFormat.regex("[0-9]+")) == header
    assert with_response_format(header, None) == header
