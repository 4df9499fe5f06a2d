"""The chain-of-thought dock: the analysis channel streamed live, how long the model thought,
every reply's reasoning kept, and the tool calls with their results.

It says plainly that this is unfiltered model reasoning: harmony's analysis channel is not held
to the standards of the final answer.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QTextBrowser, QVBoxLayout, QWidget

from . import theme
from .chat_view import REASONING_LEVEL_NAMES, thought_label
from .markdown_view import insert_text_with_math, monospace_font
from .transcript import Turn

TITLE = "Unfiltered model reasoning"
EXPLANATION = (
    "The model's raw chain of thought, shown as generated. It is not checked like the answers "
    "and can be wrong or unsafe; rely on the answer, not on this."
)


def anchor_name(first_id: int) -> str:
    return f"reply-{first_id}"


def duration_label(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _pretty_arguments(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


class ReasoningPanel(QDockWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Reasoning", parent)
        self.setObjectName("ReasoningPanel")
        self.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self._replies = 0

        title = QLabel(TITLE)
        title.setObjectName("ReasoningTitle")
        explanation = QLabel(EXPLANATION)
        explanation.setObjectName("ReasoningExplanation")
        explanation.setWordWrap(True)
        self.status = QLabel("No reasoning yet.")
        self.status.setObjectName("ReasoningStatus")
        self.text = QTextBrowser()
        self.text.setObjectName("ReasoningText")
        self.text.setFrameShape(QFrame.Shape.NoFrame)
        self.text.setOpenLinks(False)
        self.text.document().setDocumentMargin(12)

        body = QWidget()
        body.setObjectName("ReasoningBody")
        body.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(14, 10, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(title)
        layout.addWidget(explanation)
        layout.addWidget(self.status)
        layout.addWidget(self.text, 1)
        self.setWidget(body)
        self.setMinimumWidth(260)

    # -- whole conversations -------------------------------------------------------------------

    def show_turns(self, turns: list[Turn]) -> None:
        """Every reply's reasoning and tool calls for the conversation now shown."""
        self.text.clear()
        self._replies = 0
        for turn in turns:
            if turn.role != "assistant":
                continue
            self._replies += 1
            if not turn.has_reasoning:
                continue
            self._append_header(turn.first_id, turn.reasoning_level, turn.thought_seconds)
            for record in turn.records:
                if record.reasoning:
                    self._append_reasoning_block(record.reasoning)
                if record.role == "tool":
                    figures = record.stats or {}
                    self.add_tool_result(record.author_name or "tool", record.content, figures.get("seconds"),
                                         figures.get("ok", True))
                elif record.recipient:
                    self.add_tool_call(record.recipient, record.content)
        self.status.setText("No reasoning in this chat yet." if self.text.document().isEmpty() else "")
        self.status.setVisible(self.text.document().isEmpty())

    def reveal(self, first_id: int) -> None:
        self.show()
        self.raise_()
        self.text.scrollToAnchor(anchor_name(first_id))

    # -- the reply being streamed --------------------------------------------------------------

    def begin_reply(self, reasoning_level: str) -> None:
        self._replies += 1
        self._append_header(None, reasoning_level, None)
        self.status.setText("Waiting for the model…")
        self.status.show()

    def append_reasoning(self, text: str) -> None:
        """Analysis text as it streams, kept in view when the panel is scrolled to the end."""
        bar = self.text.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 24
        cursor = self._end()
        cursor.insertText(text, self._reasoning_format())
        if following:
            bar.setValue(bar.maximum())

    def start_reasoning_block(self) -> None:
        self._append_reasoning_block("")

    def set_thinking(self, seconds: float) -> None:
        self.status.setText(f"Thinking… {seconds:.0f} s")
        self.status.show()

    def set_thought(self, seconds: float | None) -> None:
        self.status.setText(thought_label(seconds) if seconds else "")
        self.status.setVisible(bool(seconds))

    def add_tool_call(self, recipient: str, arguments: str) -> None:
        self._append_label(f"→ Called {recipient}")
        self._append_code(_pretty_arguments(arguments))

    def add_tool_result(self, name: str, content: str, seconds: float | None = None, ok: bool = True) -> None:
        took = f" in {duration_label(seconds)}" if seconds is not None else ""
        self._append_label(f"← {name} returned{took}" if ok else f"← {name} failed{took}")
        self._append_code(content)

    def add_note(self, text: str) -> None:
        self._append_label(text)

    # -- drawing -------------------------------------------------------------------------------

    def _end(self) -> QTextCursor:
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        return cursor

    def _new_block(self, top_margin: float = 4) -> QTextCursor:
        cursor = self._end()
        block = QTextBlockFormat()
        block.setTopMargin(top_margin)
        if self.text.document().isEmpty():
            cursor.setBlockFormat(block)
        else:
            cursor.insertBlock(block)
        return cursor

    def _append_header(self, first_id: int | None, reasoning_level: str | None, seconds: float | None) -> None:
        parts = [f"Reply {self._replies}"]
        if reasoning_level:
            parts.append(f"{REASONING_LEVEL_NAMES[reasoning_level]} reasoning")
        if seconds:
            parts.append(thought_label(seconds))
        header = QTextCharFormat()
        header.setFontWeight(QFont.Weight.DemiBold)
        header.setForeground(QColor(theme.palette().muted))
        if first_id is not None:
            header.setAnchor(True)
            header.setAnchorNames([anchor_name(first_id)])
        self._new_block(14).insertText(" · ".join(parts), header)

    def _reasoning_format(self) -> QTextCharFormat:
        char = QTextCharFormat()
        char.setForeground(QColor(theme.palette().reasoning_text))
        return char

    def _append_reasoning_block(self, text: str) -> None:
        """Stored reasoning, its math typeset (what streams in stays plain until the reply ends)."""
        insert_text_with_math(self._new_block(4), text, self._reasoning_format(), self.text.logicalDpiY() / 72)

    def _append_label(self, text: str) -> None:
        label = QTextCharFormat()
        label.setFontWeight(QFont.Weight.DemiBold)
        label.setForeground(QColor(theme.palette().accent))
        self._new_block(8).insertText(text, label)

    def _append_code(self, text: str) -> None:
        code = QTextCharFormat()
        code.setFont(monospace_font())
        code.setForeground(QColor(theme.palette().text))
        code.setBackground(QColor(theme.palette().code_background))
        self._new_block(2).insertText(text, code)
