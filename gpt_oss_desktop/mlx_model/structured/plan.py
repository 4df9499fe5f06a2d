"""What one request holds a reply to, compiled once: the answer's grammar, the strict tools'
argument grammars, the declared recipients (function tools and the built-in browser and python
tools), whether a call is required (`tool_choice`), the reasoning budget."""

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
BUILTIN_RECIPIENTS = {"browser": ("browser.search", "browser.open", "browser.find"), "python": ("python",)}
"""The recipients each built-in tool answers to (harmony's browser namespace and python)."""

ToolChoice = str
"""`"auto"` (the model may call a declared tool or answer), `"required"` (it must call one) or a
declared recipient (`"functions.get_weather"`, `"browser.search"`, `"python"`) it must call."""


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
    call_recipients: tuple[str, ...] = ()  # the recipients a call may go to (all declared, or the one chosen)
    call_required: bool = False

    @classmethod
    def build(
        cls,
        tokenizer: Tokenizer,
        n_vocab: int,
        *,
        response_format: ResponseFormat | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
        builtin_tools: Sequence[str] = (),
        tool_choice: ToolChoice = "auto",
        max_reasoning_tokens: int | None = None,
    ) -> StructuredPlan:
        """Raises StructuredOutputError for a format or a strict tool that cannot be enforced,
        or a tool_choice that names no declared tool.

        `tools` are the conversation's function tools (`name`, `parameters`, and `strict: true`
        to hold the call's arguments to `parameters`, which must then follow the strict rules);
        `builtin_tools` the built-ins its system message declares ("browser", "python")."""
        answer = compile_format(response_format, tokenizer, n_vocab) if response_format else None
        arguments = {}
        for tool in tools:
            if tool.get("strict"):
                arguments[f"functions.{tool['name']}"] = _tool_grammar(tool, tokenizer, n_vocab)
        recipients = tuple(f"functions.{tool['name']}" for tool in tools) + tuple(
            name for tool in builtin_tools for name in BUILTIN_RECIPIENTS[tool])
        if tool_choice == "auto":
            call_recipients, required = recipients, False
        elif tool_choice == "required":
            if not recipients:
                raise StructuredOutputError("tool_choice 'required' needs at least one declared tool")
            call_recipients, required = recipients, True
        elif tool_choice in recipients:
            call_recipients, required = (tool_choice,), True
        else:
            declared = ", ".join(recipients) or "none"
            raise StructuredOutputError(f"tool_choice {tool_choice!r} is not a declared tool (declared: {declared})")
        return cls(
            tokenizer, n_vocab, response_format, answer, arguments, recipients, max_reasoning_tokens,
            HeaderTokens.of(tokenizer), call_recipients, required,
        )

    @property
    def active(self) -> bool:
        return bool(self.answer or self.arguments or self.call_required or self.max_reasoning_tokens is not None)

    @property
    def holds_headers(self) -> bool:
        """Every assistant header is held to the grammar below, so a recipient is always a
        declared one, whenever tools are declared and anything is held; without tools the first
        header runs free (a header can only name a tool that does not exist, which the parser
        reports), and so a random model's tokens there are its own."""
        return self.active and bool(self.recipients)

    @property
    def must_write(self) -> bool:
        """The reply may only end with its held answer or a call (no stop before either)."""
        return self.answer is not None or self.call_required

    def header_grammar(self, *, with_role: bool, after_reasoning: bool) -> Grammar:
        """An assistant header (the tokens up to `<|message|>`, after `<|start|>` when `with_role`)
        whose recipient, if any, is a declared one, in either order harmony allows.

        After the reasoning, with an answer format, only the final header or a call may follow;
        with a call required, only a call (to the chosen recipient, if one was chosen), and never
        the final header. A content type is written only where harmony's parser reads it as one:
        `final` takes just `<|constrain|>json` (a bare word there would be read as a recipient).
        Calls go on either channel: functions on commentary, the built-ins on analysis.
        """
        ids = self.tokens
        channel = f"<[{ids.channel}]>"
        final = f'{channel} "final" (" " <[{ids.constrain}]> "json")?'
        thinking = f'{channel} ("analysis" | "commentary")'
        names = " | ".join(json.dumps(name) for name in self.call_recipients)
        to = f'" to=" ({names})'
        typed = f'(" " <[{ids.constrain}]>? ("json" | "code"))?'
        calls = [f"{thinking} {to} {typed}", f"{to} {thinking} {typed}"] if names else []
        answers = [] if self.call_required else [final]
        alternatives = answers + calls if after_reasoning else answers + [thinking] + calls
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
