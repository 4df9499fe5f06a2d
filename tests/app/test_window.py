"""The main window: native menu roles and shortcuts, the reasoning level kept per chat, chat
management through the sidebar, and a rendering of the window for review."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import QMessageBox

from gpt_oss_desktop.app import theme
from gpt_oss_desktop.app.window import MainWindow
from gpt_oss_desktop.mlx_model import Stats

SCREENSHOT = Path("/tmp/gpt-oss-desktop-window.png")


def menu_actions(window: MainWindow) -> dict[str, QAction]:
    found = {}
    for menu_action in window.menuBar().actions():
        for action in menu_action.menu().actions():
            if not action.isSeparator():
                found[action.text()] = action
    return found


def test_app_menu_items_have_their_roles_and_the_rest_none(window):
    actions = menu_actions(window)
    assert actions["Settings…"].menuRole() == QAction.MenuRole.PreferencesRole
    assert actions["Quit gpt-oss"].menuRole() == QAction.MenuRole.QuitRole
    assert actions["About gpt-oss"].menuRole() == QAction.MenuRole.AboutRole
    assert actions["About Qt"].menuRole() == QAction.MenuRole.AboutQtRole
    app_menu = {"Settings…", "Quit gpt-oss", "About gpt-oss", "About Qt"}
    for text, action in actions.items():
        if text not in app_menu:
            assert action.menuRole() == QAction.MenuRole.NoRole, text


def test_the_usual_shortcuts(window):
    actions = menu_actions(window)

    def keys(text: str) -> list[str]:
        return [sequence.toString() for sequence in actions[text].shortcuts()]

    assert keys("New Chat") == [s.toString() for s in QKeySequence.keyBindings(QKeySequence.StandardKey.New)]
    assert "Ctrl+N" in keys("New Chat") and "Ctrl+W" in keys("Close Window") and "Ctrl+F" in keys("Search Chats")
    # Linux has no standard Preferences or Quit key; macOS maps these to ⌘, and ⌘Q itself.
    assert keys("Settings…") == ["Ctrl+,"] and keys("Quit gpt-oss") == ["Ctrl+Q"]
    assert keys("Stop Reply") == ["Ctrl+.", "Esc"]
    assert [keys(f"{level} Reasoning") for level in ("Low", "Medium", "High")] == [["Ctrl+1"], ["Ctrl+2"], ["Ctrl+3"]]


def test_stop_is_only_enabled_while_a_reply_streams(window):
    assert not window.stop_action.isEnabled()
    window.session.busy_changed.emit(True)
    assert window.stop_action.isEnabled() and not window.regenerate_action.isEnabled()
    window.session.busy_changed.emit(False)
    assert not window.stop_action.isEnabled()


def test_the_reasoning_level_is_kept_per_chat_and_shown_for_the_next_reply(window, store):
    physics = store.create_conversation(title="Physics")
    poetry = store.create_conversation(title="Poetry")
    session = window.session

    session.open_conversation(physics.id)
    window.toggle.buttons["high"].click()
    session.open_conversation(poetry.id)
    window.reasoning_level_actions["low"].trigger()
    assert window.chat.composer.hint.text().startswith("Next reply: Low reasoning")

    session.open_conversation(physics.id)
    assert window.toggle.reasoning_level() == "high" and window.reasoning_level_actions["high"].isChecked()
    assert window.chat.composer.hint.text().startswith("Next reply: High reasoning")
    assert store.conversation(physics.id).reasoning_level == "high"
    assert store.conversation(poetry.id).reasoning_level == "low"


def test_a_new_chat_starts_at_the_default_level_and_keeps_a_level_chosen_before_its_first_message(window, settings):
    from gpt_oss_desktop.app.settings import Key

    settings.set_value(Key.DEFAULT_REASONING_LEVEL, "low")
    window.session.new_conversation()
    assert window.toggle.reasoning_level() == "low"
    window.toggle.buttons["high"].click()
    assert window.session.draft_reasoning_level == "high"


def test_sidebar_rename_and_delete_change_the_store(window, store, monkeypatch):
    chat = store.create_conversation(title="Old title")
    window.refresh_sidebar()
    window.sidebar.rename_requested.emit(chat.id, "New title")
    assert store.conversation(chat.id).title == "New title"
    assert window.sidebar.list.item(0).text() == "New title"

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    window.sidebar.delete_requested.emit(chat.id)
    assert store.conversations() == [] and window.sidebar.list.count() == 0


def test_sending_without_a_model_explains_what_to_do(window):
    window.show()
    window.chat.composer.input.setPlainText("Hello?")
    window.chat.composer.submit()
    assert "No model is loaded" in window.banner.label.text() and window.banner.isVisible()
    assert window.session.store.conversations() == []
    assert window.chat.composer.input.toPlainText() == "Hello?"  # kept, to send once a model is loaded


def test_exporting_writes_the_chat_where_the_user_chose(window, store, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    chat = store.create_conversation(title="Export me")
    store.add_message(chat.id, role="user", content="Hi")
    target = tmp_path / "chat.md"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    window.export(chat.id, "markdown")
    assert target.read_text().startswith("# Export me")


def fill_review_chat(store) -> int:
    store.create_conversation(title="Trip to Lisbon")
    store.create_conversation(title="Rust borrow checker")
    chat = store.create_conversation(title="Sorting records in Python", reasoning_level="high", model="gpt-oss-20b")
    store.add_message(chat.id, role="user", content="How do I sort a list of dicts by a key, newest first?")
    store.add_message(
        chat.id, role="assistant", channel="final", reasoning_level="high", thought_seconds=3.4,
        reasoning="The user wants sorting by a key, descending. sorted() with key= and reverse=True. "
                  "Mention operator.itemgetter as the faster alternative.",
        content="Use `sorted` with a `key` function and `reverse=True`:\n\n"
                "```python\nfrom operator import itemgetter\n\n"
                "posts = [{\"title\": \"MLX\", \"date\": \"2025-08-05\"}, {\"title\": \"Qt\", \"date\": \"2025-07-01\"}]\n"
                "newest_first = sorted(posts, key=itemgetter(\"date\"), reverse=True)\n```\n\n"
                "ISO dates sort correctly as **strings**, so no parsing is needed.",
        stats={"ttft_s": 0.31, "tokens_per_s": 48.2},
    )
    store.add_message(chat.id, role="user", content="And in place?")
    return chat.id


def test_the_main_window_renders_for_review(window, store, tmp_path, styled, qtbot):
    """Renders the window as a user would see it after a reply, to PNG files for review."""
    chat_id = fill_review_chat(store)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    window.refresh_sidebar()
    window.session.open_conversation(chat_id)
    window.model.model_loaded.emit("gpt-oss-20b")
    window.session.busy_changed.emit(True)
    window.session.reply_started.emit("high")
    window.session.thinking.emit(2.0)
    window.session.reasoning_started.emit()
    window.session.reasoning_text.emit("In place means list.sort(), which returns None.")
    window.session.stats.emit(Stats(prompt_tokens=40, cached_tokens=0, new_tokens=60, ttft_s=0.31, tokens_per_s=48.2,
                                    peak_memory_bytes=0))
    window.model.context_measured.emit(1234, 8192)
    window.model.memory_measured.emit(12_900_000_000)
    window.chat.show_reply_text("Call `posts.sort(key=itemgetter(\"date\"), reverse=True)`; it sorts the list")
    qtbot.wait(100)

    image = window.grab().toImage()
    saved = tmp_path / "window.png"
    assert image.save(str(saved)) and image.save(str(SCREENSHOT))
    assert (image.width(), image.height()) == (window.width(), window.height())
    accent = QColor(theme.LIGHT.accent).rgb()
    toggle = window.toggle.buttons["high"]
    centre = toggle.mapTo(window, toggle.rect().center())
    assert image.pixel(centre.x() - toggle.width() // 3, centre.y()) == accent, "the High segment is selected"
    window.session.busy_changed.emit(False)  # the panel redraws in the new colours between replies
    theme.watcher().apply(theme.DARK)
    qtbot.wait(50)
    assert window.grab().save(str(SCREENSHOT.with_name("gpt-oss-desktop-window-dark.png")))
