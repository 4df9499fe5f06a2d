"""Stored messages become exactly the harmony message dicts the engine renders."""

from __future__ import annotations

import pytest
from openai_harmony import Message

from gpt_oss_desktop.app.store import Store
from gpt_oss_desktop.app.transcript import chat_for, group_turns, harmony_messages, title_from_text
from gpt_oss_desktop.mlx_model import Chat


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "chats.sqlite3")
    yield opened
    opened.close()


def fill(store, chat_id):
    store.add_message(chat_id, role="user", content="Weather in Paris?")
    store.add_message(
        chat_id, role="assistant", channel="commentary", recipient="functions.get_weather",
        content_type="<|constrain|>json", content='{"city":"Paris"}', reasoning="Call the tool.", reasoning_level="low",
    )
    store.add_message(
        chat_id, role="tool", author_name="functions.get_weather", channel="commentary", recipient="assistant",
        content='{"temp": 18}',
    )
    store.add_message(chat_id, role="assistant", channel="final", content="18 °C.", reasoning="Answer.", thought_seconds=1.0)


def test_messages_convert_to_harmony_dicts_in_order(store):
    chat = store.create_conversation(reasoning_level="high", developer_instructions="Be brief.")
    fill(store, chat.id)
    text = lambda t: [{"type": "text", "text": t}]  # noqa: E731

    assert harmony_messages(store.messages(chat.id)) == [
        {"role": "user", "name": None, "content": text("Weather in Paris?")},
        {"role": "assistant", "name": None, "content": text("Call the tool."), "channel": "analysis"},
        {"role": "assistant", "name": None, "content": text('{"city":"Paris"}'), "channel": "commentary",
         "recipient": "functions.get_weather", "content_type": "<|constrain|>json"},
        {"role": "tool", "name": "functions.get_weather", "content": text('{"temp": 18}'), "channel": "commentary",
         "recipient": "assistant"},
        {"role": "assistant", "name": None, "content": text("Answer."), "channel": "analysis"},
        {"role": "assistant", "name": None, "content": text("18 °C."), "channel": "final"},
    ]


def test_a_reply_stopped_while_thinking_is_not_given_back_to_the_model(store):
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Hi")
    store.add_message(chat.id, role="assistant", reasoning="The user gree", status="cancelled")
    store.add_message(chat.id, role="user", content="Hello?")
    assert [m["role"] for m in harmony_messages(store.messages(chat.id))] == ["user", "user"]


def test_the_dicts_are_what_openai_harmony_itself_produces(store):
    chat = store.create_conversation()
    fill(store, chat.id)
    for message in harmony_messages(store.messages(chat.id)):
        assert Message.from_dict(message).to_dict() == message


def test_the_chat_carries_level_instructions_and_start_date(store):
    chat = store.create_conversation(reasoning_level="low", developer_instructions="Be brief.", start_date="2025-08-05")
    store.add_message(chat.id, role="user", content="Hi")
    built = chat_for(store.conversation(chat.id), store.messages(chat.id))
    assert built == Chat(
        messages=[{"role": "user", "name": None, "content": [{"type": "text", "text": "Hi"}]}],
        reasoning_level="low", instructions="Be brief.", tools=[], start_date="2025-08-05",
    )


def test_turns_group_a_reply_with_its_tool_calls(store):
    chat = store.create_conversation()
    fill(store, chat.id)
    store.add_message(chat.id, role="user", content="Thanks")
    user, reply, thanks = group_turns(store.messages(chat.id))
    assert (user.role, user.text) == ("user", "Weather in Paris?")
    assert (reply.role, reply.text, reply.thought_seconds, reply.reasoning_level) == ("assistant", "18 °C.", 1.0, "low")
    assert reply.has_reasoning and len(reply.records) == 3
    assert thanks.text == "Thanks"


def test_titles_come_from_the_first_line_cut_at_a_word():
    assert title_from_text("\n  How do lifetimes work?\nMore") == "How do lifetimes work?"
    long = "Explain the difference between processes and threads in operating systems please"
    assert title_from_text(long) == "Explain the difference between processes and…"
