"""Parsing completions gives openai-harmony's messages and the streaming events add up to them;
malformed output is recovered from as the official non-strict parser does, and reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from harmony_corpus import conversations
from openai_harmony import HarmonyEncoding, Message, Role

from gpt_oss_desktop.mlx_model.events import MessageDone, MessageStart, ParseWarning, TextDelta, ToolCall
from gpt_oss_desktop.mlx_model.harmony import HarmonyParseError, StreamParser, parse_completion, text_of
from gpt_oss_desktop.mlx_model.tokenizer import Tokenizer

TokenSource = Callable[[HarmonyEncoding, Tokenizer], list[int]]


def _assistant_runs() -> list[tuple[str, list[Message]]]:
    """Every run of consecutive assistant messages in the corpus: what one completion holds."""
    runs = []
    for name, conversation in conversations():
        run: list[Message] = []
        for message in [*conversation.messages, None]:
            if message is not None and message.author.role == Role.ASSISTANT:
                run.append(message)
            elif run:
                runs.append((f"{name}-{len(runs)}", run))
                run = []
    return runs


def _as_rendered(harmony: HarmonyEncoding, run: list[Message]) -> list[int]:
    """The run rendered by the library; the prompt already holds `<|start|>assistant`, and a
    final answer ends with `<|return|>` as sampled."""
    tokens = [token for message in run for token in harmony.render(message)]
    last = run[-1]
    if last.channel == "final" and last.recipient is None:
        tokens[-1] = 200002
    return tokens[2:]


def _as_sampled(tokenizer: Tokenizer, run: list[Message]) -> list[int]:
    """The run as the model writes it: channel first, then ` to=recipient content_type`."""
    special = tokenizer.encode_special
    tokens: list[int] = []
    for message in run:
        tokens += [special("<|start|>"), *tokenizer.encode("assistant")] if tokens else []
        if message.channel is not None:
            tokens += [special("<|channel|>"), *tokenizer.encode(message.channel)]
        if message.recipient is not None:
            tokens += tokenizer.encode(f" to={message.recipient}")
        if message.content_type == "<|constrain|>json":
            tokens += [*tokenizer.encode(" "), special("<|constrain|>"), *tokenizer.encode("json")]
        elif message.content_type is not None:
            tokens += tokenizer.encode(f" {message.content_type}")
        tokens.append(special("<|message|>"))
        tokens += tokenizer.encode("".join(c.text for c in message.content))
        end = "<|call|>" if message.recipient is not None else "<|end|>"
        tokens.append(
            special("<|return|>" if message.channel == "final" and end == "<|end|>" else end)
        )
    return tokens


RUNS = _assistant_runs()
WELL_FORMED: list[tuple[str, TokenSource]] = [
    *((f"rendered-{name}", lambda h, t, run=run: _as_rendered(h, run)) for name, run in RUNS),
    *((f"sampled-{name}", lambda h, t, run=run: _as_sampled(t, run)) for name, run in RUNS),
]


def _text(spec: str) -> TokenSource:
    return lambda harmony, tokenizer: harmony.encode(spec, allowed_special="all")


def _pieces(*pieces: str | bytes | int) -> TokenSource:
    """Harmony text, raw bytes (one token per byte, to split characters) and raw ids."""

    def tokens(harmony: HarmonyEncoding, tokenizer: Tokenizer) -> list[int]:
        out: list[int] = []
        for piece in pieces:
            if isinstance(piece, str):
                out += harmony.encode(piece, allowed_special="all")
            elif isinstance(piece, bytes):
                out += [tokenizer.encoding.encode_single_token(bytes([b])) for b in piece]
            else:
                out.append(piece)
        return out

    return tokens


def _assistant(text: str, **fields: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "name": None,
        "content": [{"type": "text", "text": text}],
        **fields,
    }


ANALYSIS_HI = "<|channel|>analysis<|message|>hi<|end|>"

# (name, tokens, what the non-strict parser recovers where openai-harmony raises, else None)
MALFORMED: list[tuple[str, TokenSource, list[dict[str, Any]] | None]] = [
    ("refusal_without_header", _text("I  cannot help with that.<|end|>"), None),
    ("refusal_with_channel_no_message", _text("<|channel|>final I am sorry<|return|>"), None),
    (
        "later_header_without_message",
        _text(
            ANALYSIS_HI + "<|start|>assistant<|channel|>final oops<|end|>"
            "<|start|>assistant<|channel|>final<|message|>ok<|return|>"
        ),
        None,
    ),
    (
        "completion_starting_with_end",
        _text("<|end|><|start|>assistant<|channel|>final<|message|>x<|return|>"),
        None,
    ),
    ("truncated_in_content", _text("<|channel|>final<|message|>Hello wor"), None),
    (
        "special_tokens_inside_content",
        _text(
            "<|channel|>final<|message|>a<|channel|>b<|constrain|>c<|start|>d<|reserved_200013|><|return|>"
        ),
        None,
    ),
    (
        "recipient_first_constrain_unspaced",
        _text("to=functions.f<|channel|>commentary<|constrain|>json<|message|>{}<|call|>"),
        None,
    ),
    ("content_type_only", _text("<|channel|>final json<|message|>{}<|end|>"), None),
    (
        "start_token_inside_header",
        _text("<|channel|>analysis<|start|>assistant<|channel|>final<|message|>x<|end|>"),
        None,
    ),
    (
        "tool_answer_inside_completion",
        _text(
            "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>"
            '<|start|>functions.f to=assistant<|channel|>commentary<|message|>{"ok": 1}<|end|>'
            "<|start|>tool<|message|>t<|end|><|start|>user<|channel|>c<|message|>u<|end|>"
        ),
        None,
    ),
    (
        "invalid_and_split_utf8_in_content",
        _pieces(
            "<|channel|>final<|message|>",
            b"\xe2\x82",
            "x",
            b"\xff\xc0\xaf\xed\xa0\x80",
            "€",
            b"\xf0\x9f",
            b"\x98\x80",
            b"\xf0\x9f\x98",
            "<|return|>",
        ),
        None,
    ),
    ("truncated_inside_a_character", _pieces("<|channel|>final<|message|>ok", b"\xe2\x82"), None),
    (
        "missing_start",
        _text(ANALYSIS_HI + "assistant<|channel|>final<|message|>x<|return|>"),
        [_assistant("hi", channel="analysis"), _assistant("x", channel="final")],
    ),
    (
        "missing_start_and_channel_marker",
        _text(ANALYSIS_HI + "commentary to=functions.f <|constrain|>json<|message|>{}<|call|>"),
        [
            _assistant("hi", channel="analysis"),
            _assistant("{}", recipient="functions.f", content_type="<|constrain|>json"),
        ],
    ),
    (
        "message_token_without_start",
        _text(ANALYSIS_HI + "<|message|>y<|end|>"),
        [_assistant("hi", channel="analysis"), _assistant("y")],
    ),
    (
        "stray_words_in_header",
        _text("<|channel|>final extra  stuff to=x json<|message|>x<|end|>"),
        [_assistant("x", channel="final", recipient="x", content_type="json")],
    ),
    (
        "space_before_channel",
        _text("<|channel|> final<|message|>x<|end|>"),
        [_assistant("x", channel="final")],
    ),
    ("empty_channel", _text("<|channel|><|message|>x<|end|>"), [_assistant("x")]),
    (
        "unknown_role",
        _text(ANALYSIS_HI + "<|start|>foo<|channel|>x<|message|>y<|end|>"),
        [
            _assistant("hi", channel="analysis"),
            {
                "role": "tool",
                "name": "foo",
                "content": [{"type": "text", "text": "y"}],
                "channel": "x",
            },
        ],
    ),
    (
        "no_role",
        _text(ANALYSIS_HI + "<|start|><|message|>y<|end|>"),
        [_assistant("hi", channel="analysis"), _assistant("y")],
    ),
    (
        "double_end",
        _text(ANALYSIS_HI + "<|end|><|start|>assistant<|channel|>final<|message|>b<|return|>"),
        [_assistant("hi", channel="analysis"), _assistant("b", channel="final")],
    ),
    ("truncated_in_header", _text("<|channel|>analysis"), []),
    ("truncated_refusal", _text("I cannot help"), []),
    (
        "truncated_after_start",
        _text(ANALYSIS_HI + "<|start|>"),
        [_assistant("hi", channel="analysis")],
    ),
    ("text_after_end", _text(ANALYSIS_HI + "oops"), [_assistant("hi", channel="analysis")]),
    ("empty_completion", _text(""), []),
    (
        "invalid_utf8_in_header",
        _pieces("<|channel|>final", b"\xff", "<|message|>x<|end|>"),
        [_assistant("x", channel="final\ufffd")],
    ),
]


def _official(harmony: HarmonyEncoding, tokens: list[int], strict: bool) -> list[dict] | Exception:
    try:
        parsed = harmony.parse_messages_from_completion_tokens(
            tokens, Role.ASSISTANT, strict=strict
        )
    except Exception as exc:  # HarmonyError, or a UnicodeDecodeError on an undecodable header
        return exc
    return [message.to_dict() for message in parsed]


def _stream(
    tokenizer: Tokenizer, tokens: list[int], strict: bool = False
) -> tuple[StreamParser, list]:
    parser = StreamParser(tokenizer, strict=strict)
    events = []
    for token in tokens:
        events += parser.feed(token)
        assert parser.stop_reason == {200002: "return", 200012: "call"}.get(token)
    events += parser.finish()
    return parser, events


def _assert_events_add_up(events: list, messages: list[dict]) -> None:
    """Start, deltas and done of each message agree with it; tool calls follow their message."""
    completed: list[dict] = []
    start: MessageStart | None = None
    deltas: list[str] = []
    for previous, event in zip([None, *events], events, strict=False):
        if isinstance(event, MessageStart):
            assert start is None
            start, deltas = event, []
        elif isinstance(event, TextDelta):
            assert start is not None and event.channel == start.channel and event.text
            deltas.append(event.text)
        elif isinstance(event, MessageDone):
            message = event.message
            assert start is not None
            assert (start.channel, start.recipient, start.content_type) == (
                message.get("channel"), message.get("recipient"), message.get("content_type"),
            )  # fmt: skip
            assert "".join(deltas) == text_of(message)
            completed.append(message)
            start = None
        elif isinstance(event, ToolCall):
            assert isinstance(previous, MessageDone) and previous.message["role"] == "assistant"
            assert event.recipient == previous.message["recipient"]
            assert event.arguments_json == text_of(previous.message)
        else:
            assert isinstance(event, ParseWarning)
    assert start is None
    assert completed == messages


@pytest.mark.parametrize(("name", "source"), WELL_FORMED, ids=[name for name, _ in WELL_FORMED])
def test_well_formed_completions_parse_as_the_library_does(
    name: str, source: TokenSource, harmony: HarmonyEncoding, tokenizer: Tokenizer
) -> None:
    tokens = source(harmony, tokenizer)
    expected = _official(harmony, tokens, strict=True)
    assert not isinstance(expected, Exception), expected
    assert parse_completion(tokens, tokenizer, strict=True) == expected
    assert parse_completion(tokens) == expected
    parser, events = _stream(tokenizer, tokens)
    assert parser.messages == expected
    assert not [event for event in events if isinstance(event, ParseWarning)]
    _assert_events_add_up(events, expected)


def test_the_corpus_gives_enough_completions() -> None:
    assert len(RUNS) >= 20
    contents = {m.content_type for _, run in RUNS for m in run}
    assert {"<|constrain|>json", "json", "code", "<|constrain|>", None} <= contents


@pytest.mark.parametrize(("name", "source", "recovered"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_completions_strict_and_not(
    name: str,
    source: TokenSource,
    recovered: list[dict] | None,
    harmony: HarmonyEncoding,
    tokenizer: Tokenizer,
) -> None:
    tokens = source(harmony, tokenizer)
    strict = _official(harmony, tokens, strict=True)
    if isinstance(strict, Exception):
        with pytest.raises(HarmonyParseError):
            parse_completion(tokens, tokenizer, strict=True)
    else:
        assert parse_completion(tokens, tokenizer, strict=True) == strict

    lenient = _official(harmony, tokens, strict=False)
    parser, events = _stream(tokenizer, tokens)
    warnings = [event for event in events if isinstance(event, ParseWarning)]
    if isinstance(lenient, Exception):
        assert recovered is not None, f"openai-harmony raises {lenient!r}: say what we recover"
        assert parser.messages == recovered
        assert warnings or not tokens, "a recovery is always reported"
    else:
        assert recovered is None, "openai-harmony parses it: no recovery of our own"
        assert parser.messages == lenient
        if strict != lenient:  # what only the non-strict library accepts is malformed: reported
            assert warnings
    _assert_events_add_up(events, parser.messages)
    assert parse_completion(tokens, tokenizer) == parser.messages


def test_what_was_skipped_is_reported(harmony: HarmonyEncoding, tokenizer: Tokenizer) -> None:
    def warnings(spec: str) -> list[ParseWarning]:
        tokens = harmony.encode(spec, allowed_special="all")
        return [e for e in _stream(tokenizer, tokens)[1] if isinstance(e, ParseWarning)]

    dropped_header = ANALYSIS_HI + "<|start|>assistant<|channel|>final oops<|end|>"
    assert [w.skipped for w in warnings(dropped_header)] == ["assistant<|channel|>final oops"]
    assert "extra stuff" in [
        w.skipped for w in warnings("<|channel|>final extra stuff to=x json<|message|>x<|end|>")
    ]
    assert [w.skipped for w in warnings("I cannot help")] == ["I cannot help"]
    assert "<|end|>" in [w.skipped for w in warnings(ANALYSIS_HI + "<|end|>")]


def test_text_deltas_wait_for_whole_characters(
    harmony: HarmonyEncoding, tokenizer: Tokenizer
) -> None:
    tokens = _pieces("<|channel|>final<|message|>", "€".encode(), b"\xe2\x82", "x", "<|return|>")(
        harmony, tokenizer
    )
    parser = StreamParser(tokenizer)
    deltas = [[e.text for e in parser.feed(t) if isinstance(e, TextDelta)] for t in tokens]
    assert deltas[3:9] == [[], [], ["€"], [], [], ["\ufffdx"]]


def test_tool_calls_carry_parsed_arguments_or_a_clear_error(
    harmony: HarmonyEncoding, tokenizer: Tokenizer
) -> None:
    def calls(spec: str) -> list[ToolCall]:
        events = _stream(tokenizer, harmony.encode(spec, allowed_special="all"))[1]
        return [e for e in events if isinstance(e, ToolCall)]

    (good,) = calls(
        "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
        '{"city": "Oslo"}<|call|>'
    )
    assert (good.name, good.arguments, good.error) == ("get_weather", {"city": "Oslo"}, None)
    assert (good.channel, good.content_type) == ("commentary", "<|constrain|>json")

    (broken,) = calls(
        '<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"city": <|call|>'
    )
    assert broken.arguments is None and broken.arguments_json == '{"city": '
    assert (
        broken.error is not None
        and "functions.f" in broken.error
        and "not valid JSON" in broken.error
    )

    (code,) = calls("<|channel|>analysis to=python code<|message|>print(1)<|call|>")
    assert (code.recipient, code.arguments_json, code.arguments, code.error) == (
        "python",
        "print(1)",
        None,
        None,
    )

    (search,) = calls(
        '<|channel|>analysis to=browser.search code<|message|>{"query": "mlx"}<|call|>'
    )
    assert search.arguments == {"query": "mlx"}

    # A message to everyone, or from a tool to the assistant, is no call.
    assert calls("<|channel|>commentary to=all<|message|>hi<|end|>") == []
    assert (
        calls(
            "<|channel|>final<|message|>x<|end|>"
            "<|start|>functions.f to=assistant<|message|>{}<|end|>"
        )
        == []
    )


def test_a_truncated_tool_call_still_completes_at_the_end(
    harmony: HarmonyEncoding, tokenizer: Tokenizer
) -> None:
    tokens = harmony.encode(
        '<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a": 1',
        allowed_special="all",
    )
    parser, events = _stream(tokenizer, tokens)
    assert parser.messages == _official(harmony, tokens, strict=True)
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert call.arguments is None and call.error is not None


def test_an_id_outside_the_vocabulary_is_shown_and_reported(tokenizer: Tokenizer) -> None:
    special = tokenizer.encode_special
    tokens = [special("<|channel|>"), *tokenizer.encode("final"), special("<|message|>")]
    tokens += [
        *tokenizer.encode("a"),
        tokenizer.n_vocab + 10,
        *tokenizer.encode("b"),
        special("<|return|>"),
    ]
    parser, events = _stream(tokenizer, tokens)
    assert text_of(parser.messages[0]) == "a\ufffdb"
    assert any("not in the vocabulary" in e.what for e in events if isinstance(e, ParseWarning))


def test_parsed_dicts_are_openai_harmony_messages(
    harmony: HarmonyEncoding, tokenizer: Tokenizer
) -> None:
    tokens = _as_sampled(tokenizer, RUNS[0][1])
    for message in parse_completion(tokens, tokenizer):
        assert Message.from_dict(message).to_dict() == message
        json.dumps(message)
