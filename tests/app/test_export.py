"""A chat exports to readable Markdown and to JSON in harmony message form with metadata."""

from __future__ import annotations

import json

from gpt_oss_desktop.app.export import JSON_FORMAT, chat_json, chat_markdown
from gpt_oss_desktop.app.store import Store
from gpt_oss_desktop.app.transcript import harmony_messages


def make_chat(tmp_path):
    store = Store(tmp_path / "chats.sqlite3")
    chat = store.create_conversation(reasoning_level="high", developer_instructions="Answer in English.", model="gpt-oss-20b")
    store.rename_conversation(chat.id, "Weather")
    store.add_message(chat.id, role="user", content="Weather in Paris?")
    store.add_message(
        chat.id, role="assistant", channel="commentary", recipient="functions.get_weather",
        content_type="<|constrain|>json", content='{"city":"Paris"}', reasoning="Call the tool.", reasoning_level="high",
    )
    store.add_message(chat.id, role="tool", author_name="functions.get_weather", channel="commentary",
                      recipient="assistant", content='{"temp": 18}')
    store.add_message(chat.id, role="assistant", channel="final", content="It is **18 °C**.\n\n```\n``` inside\n```",
                      reasoning="Report it.", thought_seconds=2.0, reasoning_level="high", stats={"tokens_per_s": 40.0})
    return store, store.conversation(chat.id)


def test_markdown_has_the_dialogue_the_labelled_reasoning_and_the_tool_calls(tmp_path):
    store, chat = make_chat(tmp_path)
    text = chat_markdown(chat, store.messages(chat.id))
    assert text.startswith("# Weather\n")
    assert "Model: gpt-oss-20b · Reasoning: high" in text
    assert "> Answer in English." in text
    assert "## You\n\nWeather in Paris?" in text
    assert "## gpt-oss (high reasoning)" in text
    assert "<summary>Reasoning (unfiltered model reasoning, 2.0 s)</summary>" in text
    assert '**Tool call** to `functions.get_weather`\n\n```json\n{"city":"Paris"}\n```' in text
    assert "**Tool result** from `functions.get_weather`" in text
    assert "It is **18 °C**." in text
    store.close()


def test_json_holds_the_harmony_messages_and_per_message_metadata(tmp_path):
    store, chat = make_chat(tmp_path)
    records = store.messages(chat.id)
    document = json.loads(chat_json(chat, records))
    assert document["format"] == JSON_FORMAT and document["version"] == 1
    assert (document["title"], document["model"], document["reasoning_level"]) == ("Weather", "gpt-oss-20b", "high")
    assert document["start_date"] == chat.start_date
    assert document["developer_instructions"] == "Answer in English."
    assert document["messages"] == harmony_messages(records)
    assert [r["role"] for r in document["records"]] == ["user", "assistant", "tool", "assistant"]
    assert document["records"][3]["thought_seconds"] == 2.0
    assert document["records"][3]["stats"] == {"tokens_per_s": 40.0}
    store.close()


def test_exports_keep_non_ascii_text_as_it_is(tmp_path):
    store = Store(tmp_path / "chats.sqlite3")
    chat = store.create_conversation(title="Café → 東京")
    store.add_message(chat.id, role="user", content="Où est le café ? 東京")
    store.add_message(chat.id, role="assistant", channel="final", content="Ici — 18 °C, π ≈ 3.14 🙂")
    chat = store.conversation(chat.id)
    for text in (chat_json(chat, store.messages(chat.id)), chat_markdown(chat, store.messages(chat.id))):
        assert "Café → 東京" in text and "Où est le café ? 東京" in text and "18 °C, π ≈ 3.14 🙂" in text
        assert "\\u" not in text
    store.close()
