"""Streaming parser: generated token ids in, message events out, as they arrive.

It follows openai-harmony's `StreamableParser` state for state, so its messages are the ones
`parse_messages_from_completion_tokens` returns. Where the library's non-strict mode recovers
(a stop token inside a header) this parser recovers the same way; where the library would still
raise (no `<|start|>`, an unknown role, stray words or an undecodable header, the end of the
stream inside a header) it recovers too and reports what it skipped as a `ParseWarning`.
`strict=True` raises `HarmonyParseError` wherever the library's strict mode raises instead.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterable
from typing import Literal

from ..events import MessageDone, MessageStart, ParseWarning, TextDelta, ToolCall
from ..tokenizer import Tokenizer, load_tokenizer
from .header import Header, read_header
from .messages import INCOMPLETE, MessageDict

_log = logging.getLogger(__name__)

ParserEvent = MessageStart | TextDelta | MessageDone | ToolCall | ParseWarning
StopReason = Literal["return", "call"]

RAW_TEXT_TOOLS = frozenset({"python"})
"""Recipients whose input is source code, not JSON arguments."""


class HarmonyParseError(ValueError):
    """Malformed harmony that the strict parser refuses, as openai-harmony's strict mode does."""


class _State(enum.Enum):
    EXPECT_START = "expect start"
    HEADER = "header"
    CONTENT = "content"


class StreamParser:
    """Feed generated token ids one at a time; get MessageStart, TextDelta, MessageDone,
    ToolCall and ParseWarning events.

    The completion starts right after the prompt's `<|start|>assistant`, so the first header's
    role is known. After each `feed`, `stop_reason` says whether that token ends the
    assistant's action: "return" (`<|return|>`, the final answer is done) or "call"
    (`<|call|>`, a tool call waits for its result); `<|end|>` ends a message but not the turn.
    """

    def __init__(self, tokenizer: Tokenizer | None = None, *, strict: bool = False) -> None:
        self._tokenizer = tokenizer or load_tokenizer(None)
        special = self._tokenizer.encode_special
        self._start_id = special("<|start|>")
        self._message_id = special("<|message|>")
        self._stop_reasons: dict[int, StopReason | None] = {
            special("<|end|>"): None,
            special("<|return|>"): "return",
            special("<|call|>"): "call",
        }
        self._strict = strict
        self._decoder = self._tokenizer.stream_decoder()
        self._messages: list[MessageDict] = []
        self._state = _State.HEADER
        self._next_role: str | None = "assistant"
        self._header_tokens: list[int] = []
        self._header = Header(role="assistant")
        self._text: list[str] = []
        self.stop_reason: StopReason | None = None

    @property
    def messages(self) -> list[MessageDict]:
        """The completed messages, as openai-harmony `Message.to_dict()` dicts."""
        return list(self._messages)

    def feed(self, token_id: int) -> list[ParserEvent]:
        """The events this token completes (often none, or one TextDelta)."""
        events: list[ParserEvent] = []
        self.stop_reason = self._stop_reasons.get(token_id)
        if self._state is _State.EXPECT_START:
            self._expect_start(token_id, events)
        elif self._state is _State.HEADER:
            self._header_token(token_id, events)
        else:
            self._content_token(token_id, events)
        return events

    def finish(self, *, cut_short: bool = False) -> list[ParserEvent]:
        """End of stream: a message in progress completes, as the library's `process_eos` does;
        an unfinished header is reported (the library raises on it).

        `cut_short`: the stream was stopped before the model ended its turn (a cancel, a token
        limit), so a message in progress is closed as incomplete (`status: "incomplete"`) and a
        tool call in it is not made."""
        events: list[ParserEvent] = []
        if self._state is _State.CONTENT:
            self._complete_message(events, incomplete=cut_short)
        elif self._state is _State.HEADER:
            self._problem("Unexpected EOS while waiting for message header to complete")
            # Only an empty completion (nothing generated at all) has nothing to report.
            if self._header_tokens or self._next_role is None:
                skipped = self._decode_header(events)
                events.append(ParseWarning("the output ended inside a message header", skipped))
            self._state = _State.EXPECT_START
        return events

    def _expect_start(self, token_id: int, events: list[ParserEvent]) -> None:
        if token_id == self._start_id:
            self._state = _State.HEADER
            self._header_tokens = []
            return
        self._problem(f"Unexpected token {token_id} while expecting start token {self._start_id}")
        if token_id in self._stop_reasons:
            skipped = self._tokenizer.decode([token_id])
            events.append(ParseWarning("a stop token between messages was skipped", skipped))
            return
        events.append(
            ParseWarning("a message began without <|start|>; it is read as an assistant message")
        )
        self._state = _State.HEADER
        self._next_role = "assistant"
        self._header_tokens = []
        self._header_token(token_id, events)

    def _header_token(self, token_id: int, events: list[ParserEvent]) -> None:
        if token_id == self._message_id:
            self._open_message(events)
        elif token_id in self._stop_reasons and not self._strict:
            self._close_header_without_message(events)
        else:
            self._header_tokens.append(token_id)

    def _open_message(self, events: list[ParserEvent]) -> None:
        reading = read_header(self._decode_header(events), self._next_role)
        self._report(reading.problems, events)
        if reading.leftover is not None:
            self._problem(f"unexpected tokens remaining in message header: {reading.leftover!r}")
            events.append(
                ParseWarning(
                    "words in a message header that are no header field were dropped",
                    reading.leftover,
                )
            )
        self._begin_content(reading.header, events)

    def _close_header_without_message(self, events: list[ParserEvent]) -> None:
        """A stop token before `<|message|>`: the library keeps the first message's header words
        as its text (a refusal often comes out like that) and drops any later header."""
        text = self._decode_header(events)
        if self._next_role is None or not self._header_tokens:
            events.append(ParseWarning("a message header without <|message|> was dropped", text))
        else:
            reading = read_header(text, self._next_role, fields_after_role=False)
            self._report(reading.problems, events)
            events.append(
                ParseWarning("a message without <|message|>: the words of its header are its text")
            )
            self._begin_content(reading.header, events)
            if reading.leftover:
                self._add_text(reading.leftover, events)
            self._complete_message(events)
        self._state = _State.EXPECT_START
        self._next_role = None

    def _begin_content(self, header: Header, events: list[ParserEvent]) -> None:
        self._header = header
        self._next_role = None
        self._text = []
        self._state = _State.CONTENT
        events.append(MessageStart(header.channel, header.recipient, header.content_type))

    def _content_token(self, token_id: int, events: list[ParserEvent]) -> None:
        if token_id in self._stop_reasons:
            self._complete_message(events)
            return
        try:
            data = self._tokenizer.token_bytes(token_id)
        except ValueError as exc:
            events.append(ParseWarning(f"{exc}; it is shown as U+FFFD"))
            data = b"\xff"  # an invalid byte: the decoder shows it as U+FFFD in its place
        self._add_text(self._decoder.feed_bytes(data), events)

    def _add_text(self, text: str, events: list[ParserEvent]) -> None:
        if text:
            self._text.append(text)
            events.append(TextDelta(self._header.channel, text))

    def _complete_message(self, events: list[ParserEvent], *, incomplete: bool = False) -> None:
        self._add_text(self._decoder.flush(), events)
        header = self._header
        message: MessageDict = {
            "role": header.role,
            "name": header.name,
            "content": [{"type": "text", "text": "".join(self._text)}],
        }
        for key in ("channel", "recipient", "content_type"):
            if getattr(header, key) is not None:
                message[key] = getattr(header, key)
        if incomplete:
            message["status"] = INCOMPLETE
        self._messages.append(message)
        self._state = _State.EXPECT_START
        events.append(MessageDone(message))
        recipient = header.recipient
        if header.role == "assistant" and recipient is not None and recipient != "all" and not incomplete:
            events.append(_tool_call(recipient, header, message["content"][0]["text"]))

    def _decode_header(self, events: list[ParserEvent]) -> str:
        data = b"".join(self._bytes_or_replacement(t) for t in self._header_tokens)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self._problem("could not decode header")
            events.append(
                ParseWarning("a message header is not valid UTF-8; it is read with U+FFFD")
            )
            return data.decode("utf-8", "replace")

    def _bytes_or_replacement(self, token_id: int) -> bytes:
        try:
            return self._tokenizer.token_bytes(token_id)
        except ValueError:
            return b"\xff"

    def _report(self, problems: Iterable[str], events: list[ParserEvent]) -> None:
        for problem in problems:
            self._problem(problem)
            events.append(ParseWarning(problem))

    def _problem(self, description: str) -> None:
        """Malformed input: fatal in strict mode, otherwise the caller recovers and warns."""
        if self._strict:
            raise HarmonyParseError(description)


def _tool_call(recipient: str, header: Header, text: str) -> ToolCall:
    """The call a message to a recipient makes; its text is JSON arguments (python's is code)."""

    def call(**outcome: object) -> ToolCall:
        return ToolCall(
            recipient, text, channel=header.channel, content_type=header.content_type, **outcome
        )

    if recipient in RAW_TEXT_TOOLS:
        return call()
    try:
        return call(arguments=json.loads(text))
    except json.JSONDecodeError as exc:
        return call(error=f"the arguments for {recipient} are not valid JSON: {exc}")


def parse_completion(
    tokens: Iterable[int], tokenizer: Tokenizer | None = None, *, strict: bool = False
) -> list[MessageDict]:
    """The messages of a completion (the ids generated after `<|start|>assistant`).

    Like openai-harmony's `parse_messages_from_completion_tokens(tokens, Role.ASSISTANT)`; what
    the non-strict parser recovers from is logged as a warning.
    """
    parser = StreamParser(tokenizer, strict=strict)
    events = [event for token in tokens for event in parser.feed(token)]
    events += parser.finish()
    for event in events:
        if isinstance(event, ParseWarning):
            _log.warning("harmony completion: %s %r", event.what, event.skipped)
    return parser.messages
