"""The chat view: Enter and Shift+Enter, Markdown with highlighted code and copy buttons,
coalesced streaming, edit and resend."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QTextDocument

from gpt_oss_desktop.app.chat_view import RENDER_INTERVAL_MS, ChatView, MessageInput
from gpt_oss_desktop.app.markdown_view import MessageView, Segment, render_markdown, split_fences
from gpt_oss_desktop.app.theme import LIGHT
from gpt_oss_desktop.app.transcript import group_turns

CODE = "def add(a, b):\n    return a + b"
REPLY = f"Here is **a function**:\n\n```python\n{CODE}\n```\n\nAnd `inline` code."


def test_enter_sends_and_shift_enter_starts_a_new_line(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    sent: list[str] = []
    view.send_requested.connect(sent.append)
    field = view.composer.input

    qtbot.keyClicks(field, "first line")
    qtbot.keyClick(field, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(field, "second line")
    assert sent == [] and field.toPlainText() == "first line\nsecond line"

    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert sent == ["first line\nsecond line"]
    assert field.toPlainText() == "first line\nsecond line"  # until the message is stored
    view.composer.message_stored()
    assert field.toPlainText() == ""


def test_an_empty_message_or_a_busy_chat_sends_nothing(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    sent: list[str] = []
    view.send_requested.connect(sent.append)
    qtbot.keyClicks(view.composer.input, "   ")
    qtbot.keyClick(view.composer.input, Qt.Key.Key_Return)
    view.set_busy(True)
    view.composer.input.setPlainText("wait")
    qtbot.keyClick(view.composer.input, Qt.Key.Key_Enter)
    assert sent == [] and view.composer.input.toPlainText() == "wait"


def test_the_input_grows_with_its_lines_up_to_a_limit(qtbot):
    field = MessageInput()
    qtbot.addWidget(field)
    field.show()
    one_line = field.height()
    field.setPlainText("a\nb\nc")
    assert field.height() > one_line
    field.setPlainText("\n".join("x" * 30))
    tall = field.height()
    field.setPlainText("\n".join("x" * 60))
    assert field.height() == tall


def test_fenced_code_is_split_out_even_while_still_open():
    assert split_fences("Intro\n```python\nx = 1\n```\nOutro") == [
        Segment("Intro"), Segment("x = 1", "python"), Segment("Outro"),
    ]
    assert split_fences("Streaming\n```js\nlet a") == [Segment("Streaming"), Segment("let a", "js")]
    assert split_fences("````md\n```\nnested\n```\n````") == [Segment("```\nnested\n```", "md")]


def colours_of(document: QTextDocument, text: str) -> set[str]:
    found = set()
    block = document.begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            fragment = iterator.fragment()
            if fragment.text() == text:
                found.add(fragment.charFormat().foreground().color().name())
            iterator += 1
        block = block.next()
    return found


def test_markdown_renders_with_highlighted_code_and_a_copy_link(qapp):
    document = QTextDocument()
    blocks = render_markdown(document, REPLY, LIGHT)

    assert blocks == [CODE]
    plain = document.toPlainText()
    assert "Here is a function:" in plain and "**" not in plain and "```" not in plain
    assert "def add(a, b):" in plain and "Copy" in plain
    keyword, name = colours_of(document, "def"), colours_of(document, "add")
    assert keyword and keyword != {QColor(LIGHT.text).name()}, "keywords take the pygments style's colour"
    assert keyword != name


def test_raw_html_from_the_model_is_shown_as_text(qapp):
    document = QTextDocument()
    render_markdown(document, "<img src='http://example.com/x.png'> <b>bold?</b>", LIGHT)
    assert "<b>bold?</b>" in document.toPlainText()


def test_the_copy_link_puts_the_code_block_on_the_clipboard(qtbot):
    view = MessageView()
    qtbot.addWidget(view)
    view.show_markdown(REPLY, LIGHT)
    copied: list[str] = []
    view.copied.connect(copied.append)
    QGuiApplication.clipboard().clear()

    view.anchorClicked.emit(QUrl("copy:0"))

    assert QGuiApplication.clipboard().text() == CODE
    assert copied == [CODE]


def test_each_message_has_a_copy_button_for_its_whole_text(qtbot, store):
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Write add()")
    store.add_message(chat.id, role="assistant", channel="final", content=REPLY)
    view = ChatView()
    qtbot.addWidget(view)
    view.show_turns(group_turns(store.messages(chat.id)))

    view.bubbles[1].copy_button.click()
    assert QGuiApplication.clipboard().text() == REPLY
    view.bubbles[0].copy_button.click()
    assert QGuiApplication.clipboard().text() == "Write add()"


def test_streamed_text_is_rendered_at_most_once_per_tick(qtbot, monkeypatch):
    view = ChatView()
    qtbot.addWidget(view)
    view.begin_reply("high")
    bubble = view.bubbles[-1]
    renders: list[str] = []
    original = bubble.set_text
    monkeypatch.setattr(bubble, "set_text", lambda text: (renders.append(text), original(text)))

    text = ""
    for word in ("The ", "answer ", "is ", "**42**."):
        text += word
        view.show_reply_text(text)
    assert renders == []
    qtbot.waitUntil(lambda: renders == ["The answer is **42**."], timeout=20 * RENDER_INTERVAL_MS)
    assert "The answer is 42." in bubble.view.toPlainText()
    assert bubble.reasoning_level_badge.text() == "High reasoning"


def test_edit_loads_the_message_and_enter_resends_it_in_place(qtbot, store):
    chat = store.create_conversation()
    question = store.add_message(chat.id, role="user", content="What is 2+2?")
    store.add_message(chat.id, role="assistant", channel="final", content="4")
    view = ChatView()
    qtbot.addWidget(view)
    view.show_turns(group_turns(store.messages(chat.id)))
    edits: list[tuple[int, str]] = []
    sent: list[str] = []
    view.edit_submitted.connect(lambda message_id, text: edits.append((message_id, text)))
    view.send_requested.connect(sent.append)

    view.bubbles[0].edit_button.click()
    field = view.composer.input
    assert field.toPlainText() == "What is 2+2?" and not view.composer.edit_banner.isHidden()
    field.setPlainText("What is 3+3?")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert edits == [(question.id, "What is 3+3?")] and sent == []

    view.bubbles[0].edit_button.click()
    qtbot.keyClick(field, Qt.Key.Key_Escape)
    assert field.toPlainText() == "" and view.composer.edit_banner.isHidden()


def test_regenerate_is_offered_on_the_last_reply_only_and_not_while_busy(qtbot, store):
    chat = store.create_conversation()
    for text in ("one", "two"):
        store.add_message(chat.id, role="user", content=text)
        store.add_message(chat.id, role="assistant", channel="final", content=text.upper())
    view = ChatView()
    qtbot.addWidget(view)
    view.show()
    view.show_turns(group_turns(store.messages(chat.id)))
    regenerated: list[bool] = []
    view.regenerate_requested.connect(lambda: regenerated.append(True))

    first_reply, last_reply = view.bubbles[1], view.bubbles[3]
    assert not first_reply.regenerate_button.isVisible() and last_reply.regenerate_button.isVisible()
    last_reply.regenerate_button.click()
    assert regenerated == [True]
    view.set_busy(True)
    assert not last_reply.regenerate_button.isVisible()


def test_a_stopped_or_interrupted_reply_says_so(qtbot, store):
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Count")
    store.add_message(chat.id, role="assistant", channel="final", content="1 2 3", status="interrupted",
                      detail="The app stopped before this reply finished.")
    view = ChatView()
    qtbot.addWidget(view)
    view.show_turns(group_turns(store.messages(chat.id)))
    assert view.bubbles[1].status.text() == "The app stopped before this reply finished."
