"""What a reply's answer must look like: a JSON Schema, any JSON object, a Lark grammar or a regex.

`ResponseFormat` is read from the OpenAI request shapes (Chat Completions' `response_format`,
the Responses API's `text.format`) so the server and the app hand requests over unchanged; the
JSON Schema is checked against the subset OpenAI's Structured Outputs accept when it is read, so
a bad request fails before any token is generated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .schema import check_schema

FormatKind = Literal["json_schema", "json_object", "lark", "regex"]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_NAME = "structured_output"


class StructuredOutputError(ValueError):
    """A response format or tool schema that cannot be enforced; the message names the field."""


@dataclass(frozen=True)
class ResponseFormat:
    """The answer's format. `grammar` holds the schema as compact JSON, or the Lark/regex text,
    so the format is hashable and its compiled grammar can be cached by value."""

    kind: FormatKind
    grammar: str = ""
    name: str = DEFAULT_NAME
    description: str | None = None
    strict: bool = False

    @property
    def schema(self) -> dict[str, Any] | None:
        return json.loads(self.grammar) if self.kind == "json_schema" else None

    @classmethod
    def json_schema(
        cls, schema: Mapping[str, Any], *, name: str = DEFAULT_NAME, description: str | None = None,
        strict: bool = False, where: str = "json_schema",
    ) -> ResponseFormat:
        """`where` names the request field the schema came from, for the error messages."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise StructuredOutputError(
                f"{where}.name {name!r} must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'"
            )
        if description is not None and not isinstance(description, str):
            raise StructuredOutputError(f"{where}.description must be a string")
        if not isinstance(strict, bool):
            raise StructuredOutputError(f"{where}.strict must be true or false, not {strict!r}")
        try:
            check_schema(schema, strict=strict)
        except ValueError as exc:
            raise StructuredOutputError(f"{where}.schema: {exc}") from None
        return cls("json_schema", _compact(schema), name, description, strict)

    @classmethod
    def json_object(cls) -> ResponseFormat:
        return cls("json_object")

    @classmethod
    def lark(cls, grammar: str) -> ResponseFormat:
        """A Lark grammar in llguidance's dialect (`start:` is the answer)."""
        return cls("lark", _text("lark grammar", grammar))

    @classmethod
    def regex(cls, pattern: str) -> ResponseFormat:
        return cls("regex", _text("regex", pattern))

    @classmethod
    def from_chat_completions(cls, value: Mapping[str, Any] | None) -> ResponseFormat | None:
        """Chat Completions' `response_format`: `{"type": "json_schema", "json_schema": {"name",
        "schema", "strict", "description"}}`, `{"type": "json_object"}` or `{"type": "text"}`."""
        kind = _format_type(value, "response_format")
        if kind != "json_schema":
            return None if kind is None else cls.json_object()
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping):
            raise StructuredOutputError("response_format.json_schema is required for type json_schema")
        return cls._from_spec(spec, "response_format.json_schema")

    @classmethod
    def from_responses_text_format(cls, value: Mapping[str, Any] | None) -> ResponseFormat | None:
        """The Responses API's `text.format`: `{"type": "json_schema", "name", "schema",
        "strict", "description"}`, `{"type": "json_object"}` or `{"type": "text"}`."""
        kind = _format_type(value, "text.format")
        if kind != "json_schema":
            return None if kind is None else cls.json_object()
        return cls._from_spec(value, "text.format")

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any], where: str) -> ResponseFormat:
        schema = spec.get("schema")
        if not isinstance(schema, Mapping):
            raise StructuredOutputError(f"{where}.schema must be a JSON Schema object")
        strict = spec.get("strict")
        return cls.json_schema(
            schema, name=spec.get("name", DEFAULT_NAME), description=spec.get("description"),
            strict=False if strict is None else strict, where=where,
        )


def _format_type(value: Mapping[str, Any] | None, where: str) -> str | None:
    """The format's type, or None for plain text (no format)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise StructuredOutputError(f"{where} must be an object")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return kind
    if kind != "json_schema":
        raise StructuredOutputError(f"{where}.type must be 'text', 'json_object' or 'json_schema', not {kind!r}")
    return kind


def _compact(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def _text(what: str, text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise StructuredOutputError(f"the {what} is empty")
    return text


def response_formats_section(response_format: ResponseFormat) -> str | None:
    """The developer message's `# Response Formats` section (harmony's docs/format.md): the
    format's name, its description as a `//` line, and the schema as compact JSON. Only a JSON
    Schema has one; JSON mode and grammars are enforced without telling the model a schema."""
    if response_format.kind != "json_schema":
        return None
    lines = ["# Response Formats", "", f"## {response_format.name}", ""]
    if response_format.description:
        lines.append(f"// {response_format.description}")
    lines.append(response_format.grammar)
    return "\n".join(lines)
