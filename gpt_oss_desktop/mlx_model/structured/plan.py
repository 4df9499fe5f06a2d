"""What one request holds a reply to, compiled once: the answer's grammar, the strict tools'
argument grammars, the declared recipients, the reasoning budget."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..tokenizer import Tokenizer
from .formats import ResponseFormat, StructuredOutputError
from .grammar import Grammar, compile_format, compile_json_schema, compile_lark
from .schema import check_schema

_NO_PARAMETERS = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True)
class HeaderTokens:
    """The ids the controller writes when it opens a message itself."""

    start: int
    end: int
    message: int
    channel: int
    constrain: int
    return_: int
    call: int
    assistant: tuple[int, ...]
    final: tuple[int, ...]

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> HeaderTokens:
        special = tokenizer.encode_special
        return cls(
            special("<|start|>"), special("<|end|>"), special("<|message|>"), special("<|channel|>"),
            special("<|constrain|>"), special("<|return|>"), special("<|call|>"),
            tuple(tokenizer.encode("assistant")), tuple(tokenizer.encode("final")),
        )

    def final_header(self) -> list[int]:
        """`<|start|>assistant<|channel|>final<|message|>`, in the renderer's tokens."""
        return [self.start, *self.assistant, self.channel, *self.final, self.message]


@dataclass
class StructuredPlan:
    tokenizer: Tokenizer
    n_vocab: int
    response_format: ResponseFormat | None = None
    answer: Grammar | None = None
    arguments: dict[str, Grammar] = field(default_factory=dict)
    recipients: tuple[str, ...] = ()
    max_reasoning_tokens: int | None = None
    tokens: HeaderTokens | None = None

    @classmethod
    def build(
        cls,
        tokenizer: Tokenizer,
        n_vocab: int,
        *,
        response_format: ResponseFormat | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
        max_reasoning_tokens: int | None = None,
    ) -> StructuredPlan:
        """Raises StructuredOutputError for a format or a strict tool that cannot be enforced.

        `tools` are the conversation's function tools (`name`, `parameters`, and `strict: true`
        to hold the call's arguments to `parameters`, which must then follow the strict rules)."""
        answer = compile_format(response_format, tokenizer, n_vocab) if response_format else None
        arguments = {}
        for tool in tools:
            if tool.get("strict"):
                arguments[f"functions.{tool['name']}"] = _tool_grammar(tool, tokenizer, n_vocab)
        recipients = tuple(f"functions.{tool['name']}" for tool in tools)
        return cls(
            tokenizer, n_vocab, response_format, answer, arguments, recipients, max_reasoning_tokens,
            HeaderTokens.of(tokenizer),
        )

    @property
    def active(self) -> bool:
        return bool(self.answer or self.arguments or self.max_reasoning_tokens is not None)

    def header_grammar(self, *, with_role: bool, after_reasoning: bool) -> Grammar:
        """An assistant header (the tokens up to `<|message|>`, after `<|start|>` when `with_role`)
        whose recipient, if any, is a declared one, in either order harmony allows.

        After the reasoning, with an answer format, only the final header or a call may follow.
        A content type is written only where harmony's parser reads it as one: `final` takes
        just `<|constrain|>json` (a bare word there would be read as a recipient).
        """
        ids = self.tokens
        channel = f"<[{ids.channel}]>"
        final = f'{channel} "final" (" " <[{ids.constrain}]> "json")?'
        names = " | ".join(json.dumps(name) for name in self.recipients)
        to = f'" to=" ({names})'
        typed = f'(" " <[{ids.constrain}]>? ("json" | "code"))?'
        if after_reasoning:
            alternatives = [final] + ([f'{channel} "commentary" {to} {typed}'] if names else [])
        else:
            thinking = f'{channel} ("analysis" | "commentary")'
            alternatives = [final, thinking]
            if names:
                alternatives += [f"{thinking} {to} {typed}", f"{to} {thinking} {typed}"]
        role = f"<[{' '.join(map(str, ids.assistant))}]> " if with_role else ""
        text = f"start: {role}({' | '.join(alternatives)}) <[{ids.message}]>\n"
        return compile_lark(text, self.tokenizer, self.n_vocab, "the message header")


def _tool_grammar(tool: Mapping[str, Any], tokenizer: Tokenizer, n_vocab: int) -> Grammar:
    name = tool.get("name")
    parameters = tool.get("parameters") or _NO_PARAMETERS
    try:
        check_schema(parameters, strict=True)
    except ValueError as exc:
        raise StructuredOutputError(f"tool {name!r} parameters: {exc}") from None
    return compile_json_schema(parameters, tokenizer, n_vocab, f"the parameters of tool {name!r}")
