"""Markdown tables, block quotes and task lists, and math typeset by matplotlib, in the chat view
and the reasoning panel; checked in a rendered PNG of the chat view (saved for review)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage, QTextFormat, QTextImageFormat, QTextTable

from gpt_oss_desktop.app import theme
from gpt_oss_desktop.app.chat_view import ChatView
from gpt_oss_desktop.app.math_text import MathError, find_math, typeset
from gpt_oss_desktop.app.reasoning_panel import ReasoningPanel
from gpt_oss_desktop.app.transcript import group_turns

SCREENSHOT = Path("/tmp/gpt-oss-desktop-math.png")
REPLY = r"""Euler's identity $e^{i\pi} + 1 = 0$ and \(x = \frac{-b \pm \sqrt{b^2-4ac}}{2a}\). A price of $5 and $10 stays text.

$$\int_0^1 x^2\,dx = \frac{1}{3}$$

\[\sum_{n=1}^{\infty} \frac{1}{n^2} = \frac{\pi^2}{6}\]

| Planet | Moons |
|:-------|------:|
| Earth  | 1     |
| Mars   | 2     |

> Quoted, over
> two lines.

- [x] a done task
- [ ] an open task

Broken TeX stays as source: $\frac{a$ here; `$code$` too.
"""


def test_math_is_found_with_the_usual_delimiters_and_prices_code_and_escapes_are_left_alone():
    found = [(span.tex, span.display) for span in find_math(REPLY)]
    assert found == [
        (r"e^{i\pi} + 1 = 0", False),
        (r"x = \frac{-b \pm \sqrt{b^2-4ac}}{2a}", False),
        (r"\int_0^1 x^2\,dx = \frac{1}{3}", True),
        (r"\sum_{n=1}^{\infty} \frac{1}{n^2} = \frac{\pi^2}{6}", True),
        (r"\frac{a", False),
    ]
    assert find_math(r"\$5 and $ 6$, and US$7") == []


def test_typesetting_gives_a_transparent_image_in_the_colour_and_names_bad_tex():
    image = typeset(r"\frac{1}{2}", point_size=13, colour="#ff0000")
    pixels = QImage.fromData(image.png)
    assert pixels.width() == pytest.approx(image.width_pt * 2, abs=2)  # scale 2: Retina-sharp
    assert pixels.pixelColor(0, 0).alpha() == 0  # transparent: right on light and dark alike
    inked = [pixels.pixelColor(x, y) for x in range(pixels.width()) for y in range(pixels.height())]
    assert any(c.red() > 200 and c.green() < 60 and c.alpha() > 200 for c in inked)
    with pytest.raises(MathError, match="frac"):
        typeset(r"\frac{a", point_size=13, colour="#000000")


def _images(document) -> list[QTextImageFormat]:
    found = []
    block = document.begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            char = iterator.fragment().charFormat()
            if char.isImageFormat():
                found.append(char.toImageFormat())
            iterator += 1
        block = block.next()
    return found


def _inked(image: QImage, rect, background: QColor) -> int:
    """Pixels in `rect` that differ clearly from the background."""
    count = 0
    for x in range(max(0, rect.left()), min(image.width(), rect.right())):
        for y in range(max(0, rect.top()), min(image.height(), rect.bottom())):
            pixel = image.pixelColor(x, y)
            if abs(pixel.lightness() - background.lightness()) > 80:
                count += 1
    return count


def test_the_chat_view_renders_math_tables_quotes_and_task_lists(qtbot, store, styled):
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Math and a table, please.")
    store.add_message(chat.id, role="assistant", channel="final", content=REPLY)
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(820, 900)
    view.show_turns(group_turns(store.messages(chat.id)))
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)
    message = view.bubbles[1].view
    document = message.document()

    images = _images(document)
    assert len(images) == 4 and all(image.name().startswith("math:") for image in images)
    assert r"$\frac{a$" in document.toPlainText()  # kept as source, not dropped
    assert "$code$" in document.toPlainText() and "$5 and $10" in document.toPlainText()

    tables = [f for f in document.rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(tables) == 1 and tables[0].format().border() == 1
    assert tables[0].cellAt(0, 0).format().background().color().name() == theme.LIGHT.code_header
    blocks = []
    block = document.begin()
    while block.isValid():
        blocks.append(block)
        block = block.next()
    quote = next(b for b in blocks if b.blockFormat().intProperty(QTextFormat.Property.BlockQuoteLevel))
    assert quote.blockFormat().background().color().name() == theme.LIGHT.user_bubble
    markers = [b.blockFormat().marker() for b in blocks if b.text().endswith("task")]
    assert [m.name for m in markers] == ["Checked", "Unchecked"]

    shot = view.grab().toImage()
    shot.save(str(SCREENSHOT))
    display = next(b for b in blocks if b.text() == "\ufffc" and b.blockFormat().alignment() & 0x4)
    rect = document.documentLayout().blockBoundingRect(display).toRect()
    origin = message.viewport().mapTo(view, rect.topLeft())
    rect.moveTopLeft(origin)
    assert rect.width() > 0 and _inked(shot, rect, QColor(theme.LIGHT.window)) > 40  # the integral is drawn


def test_the_reasoning_panel_typesets_the_math_of_stored_reasoning(qtbot, store):
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="What is the area?")
    store.add_message(chat.id, role="assistant", channel="final", content="It is 1/3.",
                      reasoning=r"The area is $\int_0^1 x^2 dx$, and $$\frac{1}{3}$$ follows.")
    panel = ReasoningPanel()
    qtbot.addWidget(panel)
    panel.show_turns(group_turns(store.messages(chat.id)))
    assert len(_images(panel.text.document())) == 2
    assert "The area is" in panel.text.toPlainText() and "follows." in panel.text.toPlainText()
