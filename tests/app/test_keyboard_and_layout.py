"""The keyboard and the layout as a Mac user meets them: text-editing keys win in text fields,
the chat list and search work from the keyboard, focus is visible, the window has a minimum
size and a narrow one makes room, Settings scrolls, long messages fold, the title follows a
rename, and search says when it has more."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox, QWidget

from gpt_oss_desktop.app.chat_view import MessageBubble
from gpt_oss_desktop.app.settings_dialog import SettingsDialog
from gpt_oss_desktop.app.sidebar import SEARCH_PAGE
from gpt_oss_desktop.app.text_keys import TextKeysFirst
from gpt_oss_desktop.app.transcript import group_turns
from gpt_oss_desktop.app.window import MINIMUM_SIZE, NARROW_WIDTH


def show(qtbot, widget) -> None:
    """On screen and active, so the keyboard goes where a user's would."""
    with qtbot.waitActive(widget):
        widget.show()
        widget.activateWindow()


def asked_to_delete(monkeypatch) -> list[str]:
    asked: list[str] = []

    def question(_parent, _title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_ctrl_backspace_deletes_a_word_in_the_composer_and_the_chat_only_in_the_list(qtbot, window, store, monkeypatch):
    chat = store.create_conversation(title="Keep me")
    window.refresh_sidebar()
    window.session.open_conversation(chat.id)
    show(qtbot, window)
    asked = asked_to_delete(monkeypatch)
    composer = window.chat.composer.input
    composer.setFocus()
    composer.setPlainText("two words")
    composer.moveCursor(composer.textCursor().MoveOperation.End)
    qtbot.keyClick(composer, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ControlModifier)
    assert asked == []
    assert composer.toPlainText() == "two "  # the word went, as Ctrl+Backspace does in any text field

    window.sidebar.list.setFocus()
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ControlModifier)
    assert asked == ["Delete “Keep me”? This cannot be undone."]


def test_arrowing_through_the_chat_list_keeps_the_keyboard_there_and_delete_works(qtbot, window, store, monkeypatch):
    first = store.create_conversation(title="First")
    second = store.create_conversation(title="Second")
    window.refresh_sidebar()
    show(qtbot, window)
    asked = asked_to_delete(monkeypatch)
    window.sidebar.list.setFocus()
    window.sidebar.list.setCurrentRow(0)
    assert window.session.current.id == second.id
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_Down)
    assert window.session.current.id == first.id
    assert window.sidebar.list.hasFocus()  # not moved to the composer on each step
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_Delete)
    assert asked == ["Delete “First”? This cannot be undone."]
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_Return)
    assert window.chat.composer.input.hasFocus()


def test_search_from_the_keyboard_down_return_and_escape(qtbot, window, store):
    bread = store.create_conversation(title="Bread recipe")
    store.add_message(bread.id, role="user", content="sourdough starter")
    store.create_conversation(title="Rust lifetimes")
    window.refresh_sidebar()
    show(qtbot, window)
    window.find_action.trigger()
    search = window.sidebar.search
    assert search.hasFocus()

    qtbot.keyClicks(search, "sourdough")
    qtbot.keyClick(search, Qt.Key.Key_Return)  # before the typing pause ends: searched at once
    assert window.session.current.id == bread.id
    assert window.chat.composer.input.hasFocus()

    search.setFocus()
    qtbot.keyClick(search, Qt.Key.Key_Down)
    assert window.sidebar.list.hasFocus() and window.sidebar.current_id() == bread.id

    search.setFocus()
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert search.text() == "" and window.sidebar.list.count() == 2  # all chats again
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert window.chat.composer.input.hasFocus()


def test_search_says_when_there_are_more_results_and_shows_them(qtbot, window, store):
    for number in range(SEARCH_PAGE + 7):
        store.create_conversation(title=f"Holiday plan {number}")
    window.sidebar.search.setText("holiday")
    window.refresh_sidebar()
    assert window.sidebar.list.count() == SEARCH_PAGE
    assert not window.sidebar.more_button.isHidden()
    assert f"first {SEARCH_PAGE}" in window.sidebar.more_button.text()
    window.sidebar.more_button.click()
    assert window.sidebar.list.count() == SEARCH_PAGE + 7
    assert window.sidebar.more_button.isHidden()


def test_the_title_follows_a_rename(window, store):
    chat = store.create_conversation(title="Old name")
    window.session.open_conversation(chat.id)
    assert window.windowTitle() == "Old name"
    window.sidebar.rename_requested.emit(chat.id, "New name")
    assert window.windowTitle() == "New name" and window.title.text() == "New name"


def test_focus_is_visible_on_buttons_and_in_the_composer(qtbot, window, styled):
    show(qtbot, window)
    composer = window.chat.composer

    def looks(widget) -> QImage:
        qtbot.wait(10)
        return widget.grab().toImage()

    window.sidebar.search.setFocus()
    box = composer.input.parentWidget()
    unfocused = looks(box)
    composer.input.setFocus()
    assert looks(box) != unfocused
    button = window.sidebar.new_button
    unfocused = looks(button)
    button.setFocus(Qt.FocusReason.TabFocusReason)
    assert looks(button) != unfocused


def test_minimum_size_and_a_narrow_window_gives_the_chat_the_room(qtbot, window):
    show(qtbot, window)
    window.resize(420, 320)
    qtbot.wait(20)
    assert window.width() >= MINIMUM_SIZE.width() and window.height() >= MINIMUM_SIZE.height()
    assert window.sidebar.isHidden() and not window.sidebar_action.isChecked()
    assert window.chat.composer.isVisible() and window.chat.width() >= 380
    window.resize(NARROW_WIDTH + 200, 700)
    qtbot.wait(20)
    assert window.sidebar.isVisible() and window.sidebar_action.isChecked()

    window.sidebar_action.trigger()  # hidden by the user: stays hidden through narrow and wide
    window.resize(700, 500)
    window.resize(NARROW_WIDTH + 200, 700)
    qtbot.wait(20)
    assert window.sidebar.isHidden()


def test_settings_scroll_on_a_small_screen_and_tab_leaves_the_instructions(qtbot, settings, data_dir):
    dialog = SettingsDialog(settings, data_dir / "models")
    qtbot.addWidget(dialog)
    show(qtbot, dialog)
    assert dialog.height() <= dialog.screen().availableGeometry().height()
    assert dialog.scroll.widget().isAncestorOf(dialog.instructions)
    dialog.instructions.setFocus()
    qtbot.keyClick(dialog.instructions, Qt.Key.Key_Tab)
    assert not dialog.instructions.hasFocus() and dialog.instructions.toPlainText() == ""


def test_a_long_message_is_folded_with_show_more(qtbot, store):
    chat = store.create_conversation()
    text = "\n".join(f"Line {number} of a pasted log." for number in range(400))
    store.add_message(chat.id, role="user", content=text)
    bubble = MessageBubble("user")
    qtbot.addWidget(bubble)
    bubble.resize(600, 400)
    bubble.show_turn(group_turns(store.messages(chat.id))[0])
    show(qtbot, bubble)
    folded = bubble.view.height()
    assert bubble.collapsed and bubble.expand_button.text() == "Show more"
    assert folded < bubble.view.full_height() / 10
    bubble.expand_button.click()
    assert bubble.view.height() == bubble.view.full_height() and bubble.expand_button.text() == "Show less"
    bubble.apply_theme()  # a theme change keeps it open
    assert not bubble.collapsed

    short = MessageBubble("user")
    qtbot.addWidget(short)
    short.set_text("A short question?")
    assert not short.collapsed and short.expand_button.isHidden()


def test_editing_keys_win_over_any_window_shortcut_in_a_text_field(qtbot):
    """The rule behind the composer case: a window-wide command on an editing key (here
    Ctrl+Backspace and Select All) never fires while a text field has the keyboard."""
    window = QWidget()
    qtbot.addWidget(window)
    field = QLineEdit("two words", window)
    fired: list[str] = []
    for keys in ("Ctrl+Backspace", QKeySequence(QKeySequence.StandardKey.SelectAll).toString()):
        action = QAction(keys, window)
        action.setShortcut(QKeySequence(keys))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False, keys=keys: fired.append(keys))
        window.addAction(action)
    guard = TextKeysFirst(window)
    show(qtbot, window)
    field.setFocus()

    qtbot.keyClick(field, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ControlModifier)
    assert fired == ["Ctrl+Backspace"] and field.text() == "two words"  # what Qt does on its own

    QApplication.instance().installEventFilter(guard)
    field.end(False)
    qtbot.keyClick(field, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert fired == ["Ctrl+Backspace"] and field.text() == "two " and field.selectedText() == "two "
