"""The sidebar (select, rename in place, delete, search), the reasoning toggle and the
reasoning panel."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt

from gpt_oss_desktop.app.reasoning_panel import EXPLANATION, TITLE, ReasoningPanel
from gpt_oss_desktop.app.reasoning_toggle import ReasoningToggle
from gpt_oss_desktop.app.sidebar import SEARCH_DELAY_MS, ConversationSidebar, when
from gpt_oss_desktop.app.transcript import group_turns


def make_sidebar(qtbot, store):
    sidebar = ConversationSidebar()
    qtbot.addWidget(sidebar)
    first = store.create_conversation(title="Rust lifetimes")
    second = store.create_conversation(title="Bread recipe")
    sidebar.show_conversations(store.conversations(), selected=second.id)
    return sidebar, first, second


def test_choosing_a_chat_emits_it_but_selecting_from_code_does_not(qtbot, store):
    sidebar, first, second = make_sidebar(qtbot, store)
    assert sidebar.current_id() == second.id
    chosen: list[int] = []
    sidebar.conversation_selected.connect(chosen.append)

    sidebar.select(first.id)
    assert chosen == [] and sidebar.current_id() == first.id
    sidebar.list.setCurrentRow(0)
    assert chosen == [second.id]


def test_renaming_in_place_asks_for_the_new_title(qtbot, store):
    sidebar, first, _ = make_sidebar(qtbot, store)
    renamed: list[tuple[int, str]] = []
    sidebar.rename_requested.connect(lambda conversation_id, title: renamed.append((conversation_id, title)))
    sidebar.show()
    sidebar.rename(first.id)
    editor = sidebar.list.findChild(type(sidebar.search))
    assert editor is not None and editor.text() == "Rust lifetimes"
    editor.setText("Borrow checker")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the view commits on its next event-loop turn
    qtbot.waitUntil(lambda: renamed == [(first.id, "Borrow checker")], timeout=2000)


def test_the_delete_key_asks_to_delete_the_current_chat(qtbot, store):
    sidebar, _, second = make_sidebar(qtbot, store)
    deleted: list[int] = []
    sidebar.delete_requested.connect(deleted.append)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Backspace)
    assert deleted == [second.id, second.id]


def test_typing_in_search_asks_once_after_a_pause(qtbot, store):
    sidebar, _, _ = make_sidebar(qtbot, store)
    asked: list[str] = []
    sidebar.search_changed.connect(asked.append)
    qtbot.keyClicks(sidebar.search, "bread")
    qtbot.waitUntil(lambda: asked == ["bread"], timeout=10 * SEARCH_DELAY_MS)
    assert sidebar.searching()


def test_search_results_show_the_matching_chats_with_snippets(qtbot, store):
    sidebar, _, second = make_sidebar(qtbot, store)
    store.add_message(second.id, role="user", content="How long should sourdough proof?")
    sidebar.search.setText("sourdough")
    sidebar.show_search_results(store.search("sourdough"), selected=None)
    assert sidebar.list.count() == 1
    assert "sourdough" in sidebar.list.item(0).data(Qt.ItemDataRole.UserRole + 1)
    sidebar.show_search_results([], selected=None)
    assert "No chat mentions “sourdough”" in sidebar.empty.text()


def test_dates_read_naturally():
    now = dt.datetime(2026, 11, 23, 15, 0)
    assert when(dt.datetime(2026, 11, 23, 9, 5).timestamp(), now) == "09:05"
    assert when(dt.datetime(2026, 11, 22, 9, 5).timestamp(), now) == "Yesterday"
    assert when(dt.datetime(2026, 11, 1).timestamp(), now) == "01 Nov 2026"


def test_the_toggle_emits_the_clicked_level_and_shows_levels_set_from_code_silently(qtbot):
    toggle = ReasoningToggle()
    qtbot.addWidget(toggle)
    changed: list[str] = []
    toggle.reasoning_level_changed.connect(changed.append)
    toggle.set_reasoning_level("low")
    assert toggle.reasoning_level() == "low" and changed == []
    toggle.buttons["high"].click()
    assert changed == ["high"] and toggle.reasoning_level() == "high"


def test_the_panel_keeps_every_replys_reasoning_and_tool_calls_under_its_label(qtbot, store):
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Weather?")
    store.add_message(chat.id, role="assistant", channel="commentary", recipient="functions.get_weather",
                      content='{"city":"Paris"}', reasoning="Need the weather tool.", reasoning_level="high")
    store.add_message(chat.id, role="tool", author_name="functions.get_weather", channel="commentary",
                      recipient="assistant", content='{"sky":"sunny"}')
    store.add_message(chat.id, role="assistant", channel="final", content="Sunny.", reasoning="Report it.",
                      thought_seconds=2.5)
    store.add_message(chat.id, role="user", content="Thanks")
    store.add_message(chat.id, role="assistant", channel="final", content="You're welcome.", reasoning="Be polite.")
    panel = ReasoningPanel()
    qtbot.addWidget(panel)

    panel.show_turns(group_turns(store.messages(chat.id)))
    text = panel.text.toPlainText()
    assert panel.findChild(type(panel.status), "ReasoningTitle").text() == TITLE == "Unfiltered model reasoning"
    assert EXPLANATION.startswith("The model's raw chain of thought")
    for expected in ("Reply 1 · High reasoning · Thought for 2.5 s", "Need the weather tool.",
                     "→ Called functions.get_weather", '"city": "Paris"', "← functions.get_weather returned",
                     '{"sky":"sunny"}', "Report it.", "Reply 2", "Be polite."):
        assert expected in text


def test_the_panel_streams_reasoning_live_and_shows_the_thinking_time(qtbot):
    panel = ReasoningPanel()
    qtbot.addWidget(panel)
    panel.show_turns([])
    panel.begin_reply("low")
    panel.start_reasoning_block()
    for piece in ("The user ", "asks for ", "a sum."):
        panel.append_reasoning(piece)
    panel.set_thinking(3.2)
    assert "Thinking… 3 s" == panel.status.text()
    panel.set_thought(4.25)
    assert panel.status.text() == "Thought for 4.2 s"
    assert "Reply 1 · Low reasoning\nThe user asks for a sum." in panel.text.toPlainText()
