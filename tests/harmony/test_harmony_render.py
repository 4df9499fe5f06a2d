"""Rendering is token-identical with openai-harmony's render_conversation_for_completion."""

from __future__ import annotations

import json

import pytest
from harmony_corpus import conversations
from openai_harmony import (
    Author,
    Conversation,
    HarmonyEncoding,
    HarmonyError,
    Message,
    ReasoningEffort,  # not in openai_harmony.__all__
    Role,
    SystemContent,
)

from gpt_oss_desktop.mlx_model.harmony import (
    assistant_message,
    drop_completed_chain_of_thought,
    render_for_completion,
    user_message,
)
from gpt_oss_desktop.mlx_model.tokenizer import Tokenizer

CORPUS = conversations()


def _dicts(conversation: Conversation) -> list[dict]:
    return [message.to_dict() for message in conversation.messages]


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    assert len({name for name, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("name", "conversation"), CORPUS, ids=[name for name, _ in CORPUS])
def test_rendering_is_token_identical(
    name: str, conversation: Conversation, harmony: HarmonyEncoding, tokenizer: Tokenizer
) -> None:
    expected = harmony.render_conversation_for_completion(conversation, Role.ASSISTANT)
    rendered = render_for_completion(_dicts(conversation), tokenizer)
    assert rendered == expected, (tokenizer.decode(rendered), tokenizer.decode(expected))
    # The same conversation stored as JSON and read back renders the same.
    assert render_for_completion(json.loads(json.dumps(_dicts(conversation)))) == expected


@pytest.mark.parametrize(("name", "conversation"), CORPUS, ids=[name for name, _ in CORPUS])
def test_dropping_every_finished_turns_analysis_renders_alike_under_both_rules(
    name: str, conversation: Conversation, harmony: HarmonyEncoding
) -> None:
    dicts = _dicts(conversation)
    pruned = drop_completed_chain_of_thought(dicts)
    # The kept library messages themselves: a from_dict round trip would fill in field defaults.
    kept = {id(d) for d in pruned}
    official = Conversation.from_messages(
        [m for m, d in zip(conversation.messages, dicts, strict=True) if id(d) in kept]
    )
    expected = harmony.render_conversation_for_completion(official, Role.ASSISTANT)
    assert render_for_completion(pruned) == expected


def test_the_low_effort_example_verbatim(tokenizer: Tokenizer) -> None:
    """harmony's test-data/test_simple_convo_low_effort.txt."""
    system = Message.from_role_and_content(
        Role.SYSTEM, SystemContent.new().with_reasoning_effort(ReasoningEffort.LOW)
    ).to_dict()
    developer = {
        "role": "developer",
        "name": None,
        "content": [
            {
                "instructions": "Answer the user's questions like a robot.",
                "type": "developer_content",
            }
        ],
    }
    messages = [
        system,
        developer,
        user_message("What is the capital of the largest country in the world?"),
    ]
    assert tokenizer.decode(render_for_completion(messages)) == (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\n\nReasoning: low\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message."
        "<|end|><|start|>developer<|message|># Instructions\n\n"
        "Answer the user's questions like a robot.<|end|>"
        "<|start|>user<|message|>What is the capital of the largest country in the world?<|end|>"
        "<|start|>assistant"
    )


def test_analysis_of_the_finished_turn_is_dropped_verbatim(tokenizer: Tokenizer) -> None:
    """harmony's test-data/test_dropping_cot_by_default.txt."""
    messages = [
        user_message("What is 2 + 2?"),
        assistant_message("User asks a simple question.", channel="analysis"),
        assistant_message("2 + 2 equals 4."),
        user_message("What about 9 / 2?"),
    ]
    assert tokenizer.decode(render_for_completion(messages)) == (
        "<|start|>user<|message|>What is 2 + 2?<|end|>"
        "<|start|>assistant<|channel|>final<|message|>2 + 2 equals 4.<|end|>"
        "<|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant"
    )


def test_drop_completed_chain_of_thought_keeps_the_unfinished_turn() -> None:
    q1, q2 = user_message("Q1"), user_message("Q2")
    think1 = assistant_message("think 1", channel="analysis")
    a1 = assistant_message("A1")
    think2 = assistant_message("think 2", channel="analysis")
    call = assistant_message("{}", channel="commentary", recipient="functions.f")
    browse = assistant_message("{}", channel="analysis", recipient="browser.search")
    result = {**user_message("{}"), "role": "tool", "name": "functions.f", "channel": "commentary"}
    messages = [q1, think1, browse, a1, q2, think2, call, result]
    assert drop_completed_chain_of_thought(messages) == [q1, a1, q2, think2, call, result]
    assert drop_completed_chain_of_thought(messages[:4]) == [q1, a1]
    assert drop_completed_chain_of_thought([q1, think1]) == [q1, think1]


ERRORS = [
    (
        "a tool without a name",
        [Message.from_role_and_content(Role.TOOL, "result")],
        "tool message needs the tool's name",
    ),
    (
        "system content in a user message",
        [Message(author=Author(role=Role.USER), content=[SystemContent.new()])],
        "system content may only appear in system messages",
    ),
]


@pytest.mark.parametrize(("case", "messages", "error"), ERRORS, ids=[c for c, *_ in ERRORS])
def test_what_the_library_refuses_is_a_clear_error(
    case: str, messages: list[Message], error: str, harmony: HarmonyEncoding
) -> None:
    with pytest.raises(HarmonyError):
        harmony.render_conversation_for_completion(
            Conversation.from_messages(messages), Role.ASSISTANT
        )
    with pytest.raises(ValueError, match=f"message 0 cannot be rendered: .*{error}"):
        render_for_completion([message.to_dict() for message in messages])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"role": "robot", "content": []}, "unknown role 'robot'"),
        (
            {"role": "user", "content": [{"type": "image", "url": "x"}]},
            "unknown content type 'image'",
        ),
        (
            {
                "role": "system",
                "content": [{"type": "system_content", "reasoning_effort": "extreme"}],
            },
            "reasoning_effort must be one of",
        ),
    ],
)
def test_malformed_dicts_are_clear_errors(message: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        render_for_completion([message])


def test_an_incomplete_answer_is_given_back_closed_with_a_note_as_the_library_renders_it(
    harmony: HarmonyEncoding, tokenizer: Tokenizer
) -> None:
    """A cut answer renders as openai-harmony renders the same message with the note after its
    text: closed by <|end|>, so the user's next message is a message of its own."""
    from gpt_oss_desktop.mlx_model.harmony import INCOMPLETE, INCOMPLETE_NOTE

    cut = {**assistant_message("The answer is 4"), "status": INCOMPLETE}
    ours = render_for_completion([user_message("2+2?"), cut, user_message("Go on.")], tokenizer)
    library = harmony.render_conversation_for_completion(
        Conversation.from_messages([
            Message.from_role_and_content(Role.USER, "2+2?"),
            Message.from_role_and_content(Role.ASSISTANT, "The answer is 4" + INCOMPLETE_NOTE).with_channel("final"),
            Message.from_role_and_content(Role.USER, "Go on."),
        ]),
        Role.ASSISTANT,
    )
    assert ours == library
    assert "The answer is 4\n\n[This reply was stopped here" in tokenizer.decode(ours)
    assert "4<|end|>" not in tokenizer.decode(ours), "never closed as if it had been finished"


def test_a_cut_tool_call_or_thought_is_not_replayed(tokenizer: Tokenizer) -> None:
    from gpt_oss_desktop.mlx_model.harmony import INCOMPLETE

    call = {**assistant_message('{"city": "Par', "commentary", recipient="functions.get_weather"), "status": INCOMPLETE}
    thought = {**assistant_message("Let me th", "analysis"), "status": INCOMPLETE}
    plain = render_for_completion([user_message("Hi")], tokenizer)
    assert render_for_completion([user_message("Hi"), call], tokenizer) == plain
    assert render_for_completion([user_message("Hi"), thought], tokenizer) == plain
