"""The conversation: message bubbles in a scrolling column, and the input below them.

Streamed text is coalesced: deltas are buffered and the bubble is re-rendered at most every
`RENDER_INTERVAL_MS`, so a fast model does not re-parse the Markdown once per token.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QPixmap, QTextCursor, QTextOption
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .citations import link_citations
from .markdown_view import MessageView
from .transcript import Turn

RENDER_INTERVAL_MS = 40
COLUMN_WIDTH = 780
"""The reading column's width at most, as in the peers' chat views."""
ASSISTANT_NAME = "gpt-oss"
REASONING_LEVEL_NAMES = {"low": "Low", "medium": "Medium", "high": "High"}
_INPUT_MAX_LINES = 8
COLLAPSE_CHARS = 1500
COLLAPSE_LINES = 15
"""A message longer than this is shown folded to `COLLAPSED_LINES` lines with "Show more"."""
COLLAPSED_LINES = 10
IMAGE_WIDTH = 560
"""Images the tools drew are shown at most this wide (their own size when smaller)."""


def is_long(text: str) -> bool:
    return len(text) > COLLAPSE_CHARS or text.count("\n") >= COLLAPSE_LINES


def thought_label(seconds: float) -> str:
    return f"Thought for {seconds:.1f} s" if seconds < 10 else f"Thought for {seconds:.0f} s"


def _tool_button(icon_name: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setObjectName("MessageAction")
    button.setProperty("icon_name", icon_name)
    button.setIcon(theme.icon(icon_name, theme.palette().muted))
    button.setIconSize(QSize(15, 15))
    button.setToolTip(tip)
    button.setAutoRaise(True)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


class _VersionSwitch(QWidget):
    """‹ 2/3 ›: steps through the kept versions of a turn (a regenerated reply, an edited
    message and what followed it); hidden while there is only one."""

    chosen = Signal(object, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("VersionSwitch")
        self.after_id: int | None = None
        self.shown, self.count = 1, 1
        self.previous = QToolButton()
        self.previous.setText("‹")
        self.previous.setToolTip("Previous version")
        self.previous.clicked.connect(lambda: self._step(-1))
        self.label = QLabel()
        self.label.setObjectName("VersionNumber")
        self.next = QToolButton()
        self.next.setText("›")
        self.next.setToolTip("Next version")
        self.next.clicked.connect(lambda: self._step(1))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(0)
        for widget in (self.previous, self.label, self.next):
            layout.addWidget(widget)
        self.hide()

    def show_versions(self, after_id: int | None, versions: tuple[int, int] | None) -> None:
        self.after_id = after_id
        self.shown, self.count = versions or (1, 1)
        self.label.setText(f"{self.shown}/{self.count}")
        self.previous.setEnabled(self.shown > 1)
        self.next.setEnabled(self.shown < self.count)
        self.setVisible(self.count > 1)

    def _step(self, step: int) -> None:
        target = self.shown + step
        if 1 <= target <= self.count:
            self.chosen.emit(self.after_id, target)


class MessageBubble(QFrame):
    """One turn: the user's message, or the assistant's answer with its reasoning link."""

    copy_clicked = Signal()
    edit_clicked = Signal()
    regenerate_clicked = Signal()
    reasoning_clicked = Signal()
    version_chosen = Signal(object, int)  # the message the versions follow (None: the start), its number

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.first_id: int | None = None
        self.text = ""
        self.citations: list[dict] = []
        self.collapsed = False
        self.setObjectName("UserRow" if role == "user" else "AssistantRow")
        self.view = MessageView()
        self.view.setObjectName("UserText" if role == "user" else "AssistantText")
        self.copy_button = _tool_button("copy", "Copy message")
        self.copy_button.clicked.connect(self.copy_clicked)
        self.status = QLabel()
        self.status.setObjectName("MessageStatus")
        self.status.setWordWrap(True)
        self.status.hide()
        self.versions = _VersionSwitch()
        self.versions.chosen.connect(self.version_chosen)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 6, 0, 6)
        outer.setSpacing(2)
        actions = QHBoxLayout()
        actions.setSpacing(2)
        if role == "user":
            self.bubble = QFrame()
            self.bubble.setObjectName("UserBubble")
            inner = QVBoxLayout(self.bubble)
            inner.setContentsMargins(14, 9, 14, 9)
            inner.addWidget(self.view)
            self.expand_button = QToolButton()
            self.expand_button.setObjectName("ExpandMessage")
            self.expand_button.setCursor(Qt.CursorShape.PointingHandCursor)
            self.expand_button.clicked.connect(lambda: self.set_collapsed(not self.collapsed))
            self.expand_button.hide()
            inner.addWidget(self.expand_button, 0, Qt.AlignmentFlag.AlignLeft)
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(self.bubble, 4)
            outer.addLayout(row)
            self.edit_button = _tool_button("edit", "Edit and resend")
            self.edit_button.clicked.connect(self.edit_clicked)
            actions.addStretch(1)
            actions.addWidget(self.versions)
            actions.addWidget(self.edit_button)
            actions.addWidget(self.copy_button)
        else:
            header = QHBoxLayout()
            header.setSpacing(8)
            name = QLabel(ASSISTANT_NAME)
            name.setObjectName("AssistantName")
            self.reasoning_level_badge = QLabel()
            self.reasoning_level_badge.setObjectName("ReasoningLevelBadge")
            self.thought = QToolButton()
            self.thought.setObjectName("ThoughtLink")
            self.thought.setCursor(Qt.CursorShape.PointingHandCursor)
            self.thought.setToolTip("Show the reasoning in the Reasoning panel")
            self.thought.clicked.connect(self.reasoning_clicked)
            self.thought.hide()
            header.addWidget(name)
            header.addWidget(self.reasoning_level_badge)
            header.addWidget(self.thought)
            header.addStretch(1)
            outer.addLayout(header)
            outer.addWidget(self.view)
            self.images = QVBoxLayout()
            self.images.setSpacing(6)
            outer.addLayout(self.images)
            self.regenerate_button = _tool_button("regenerate", "Regenerate this reply")
            self.regenerate_button.clicked.connect(self.regenerate_clicked)
            self.stats = QLabel()
            self.stats.setObjectName("MessageStats")
            actions.addWidget(self.versions)
            actions.addWidget(self.copy_button)
            actions.addWidget(self.regenerate_button)
            actions.addSpacing(6)
            actions.addWidget(self.stats)
            actions.addStretch(1)
        outer.addWidget(self.status)
        outer.addLayout(actions)

    # -- content -------------------------------------------------------------------------------

    def set_text(self, text: str, citations: list[dict] | None = None) -> None:
        new_text, self.text = text != self.text, text
        if citations is not None:
            self.citations = citations
        if self.role == "user":
            self.view.show_plain(text)
            self.expand_button.setVisible(is_long(text))
            self.set_collapsed(is_long(text) and (new_text or self.collapsed))
        else:
            self.view.show_markdown(link_citations(text, self.citations), theme.palette())

    def show_images(self, images: list[tuple[str, str]]) -> None:
        """What the reply's tools drew (python's plots), below the answer."""
        while self.images.count():
            self.images.takeAt(0).widget().deleteLater()
        for _mime, data in images:
            pixmap = QPixmap()
            if not pixmap.loadFromData(QByteArray.fromBase64(data.encode("ascii"))):
                continue
            picture = QLabel()
            picture.setObjectName("ToolImage")
            if pixmap.width() > IMAGE_WIDTH:
                pixmap = pixmap.scaledToWidth(IMAGE_WIDTH, Qt.TransformationMode.SmoothTransformation)
            picture.setPixmap(pixmap)
            self.images.addWidget(picture, 0, Qt.AlignmentFlag.AlignLeft)

    def set_collapsed(self, collapsed: bool) -> None:
        """Fold a long message to its first lines, or show all of it."""
        self.collapsed = collapsed
        self.view.set_height_cap(COLLAPSED_LINES * self.view.fontMetrics().lineSpacing() if collapsed else None)
        self.expand_button.setText("Show more" if collapsed else "Show less")

    def set_reasoning_level(self, reasoning_level: str | None) -> None:
        if self.role == "user":
            return
        self.reasoning_level_badge.setText(f"{REASONING_LEVEL_NAMES[reasoning_level]} reasoning" if reasoning_level else "")
        self.reasoning_level_badge.setVisible(bool(reasoning_level))

    def set_thinking(self, seconds: float) -> None:
        self.thought.setText(f"Thinking… {seconds:.0f} s")
        self.thought.show()

    def set_thought(self, seconds: float, has_reasoning: bool) -> None:
        self.thought.setText(thought_label(seconds) + "  ›" if seconds else "Reasoning  ›")
        self.thought.setVisible(has_reasoning)

    def set_status(self, status: str, detail: str | None) -> None:
        messages = {"cancelled": "Stopped.", "interrupted": "Interrupted: the app stopped before this reply finished.",
                    "failed": "The reply failed."}
        text = detail if status in ("failed", "interrupted") and detail else (detail or messages.get(status, ""))
        if status == "cancelled" and detail and not detail.startswith("Stopped"):
            text = f"Stopped. {detail}"
        self.status.setProperty("severity", "error" if status == "failed" else "note")
        self.status.setText(text)
        self.status.setVisible(bool(text))
        self.status.style().polish(self.status)

    def set_stats(self, stats: dict | None) -> None:
        if self.role == "assistant":
            rate = (stats or {}).get("tokens_per_s")
            self.stats.setText(f"{rate:.1f} tok/s" if rate else "")

    def show_turn(self, turn: Turn) -> None:
        self.first_id = turn.first_id
        self.versions.show_versions(turn.version_after, turn.versions)
        self.set_text(turn.text, turn.citations if self.role == "assistant" else None)
        if self.role == "assistant":
            self.show_images(turn.images)
            self.set_reasoning_level(turn.reasoning_level)
            self.set_thought(turn.thought_seconds, turn.has_reasoning)
            self.set_stats(turn.stats)
            self.set_status(turn.status, turn.detail)

    def apply_theme(self) -> None:
        for button in self.findChildren(QToolButton, "MessageAction"):
            button.setIcon(theme.icon(button.property("icon_name"), theme.palette().muted))
        self.set_text(self.text)

    def set_actions_enabled(self, enabled: bool, *, last: bool) -> None:
        if self.role == "user":
            self.edit_button.setEnabled(enabled)
        else:
            self.regenerate_button.setVisible(last and enabled)  # not on a reply still streaming


class MessageInput(QPlainTextEdit):
    """Enter sends; Shift+Enter starts a new line; Esc leaves edit mode."""

    submitted = Signal()
    escaped = Signal()
    focus_changed = Signal(bool)  # the box around it shows the focus

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageInput")
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTabChangesFocus(True)
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self._fit_height()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.submitted.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            event.ignore()
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.focus_changed.emit(True)

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.focus_changed.emit(False)

    def _fit_height(self) -> None:
        line = self.fontMetrics().lineSpacing()
        lines = max(1, min(_INPUT_MAX_LINES, int(self.document().size().height())))
        margins = self.contentsMargins().top() + self.contentsMargins().bottom()
        self.setFixedHeight(lines * line + int(2 * self.document().documentMargin()) + margins + 2)


class Composer(QFrame):
    """The input, its Send/Stop button, the next reply's reasoning level, and edit mode."""

    send_requested = Signal(str)
    edit_submitted = Signal(int, str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Composer")
        self.editing_id: int | None = None
        self._busy = False

        self.edit_banner = QLabel("Editing a message: Enter resends it and replaces what followed. Esc cancels.")
        self.edit_banner.setObjectName("EditBanner")
        self.edit_banner.hide()
        self.input = MessageInput()
        self.input.setPlaceholderText("Message gpt-oss")
        self.input.submitted.connect(self.submit)
        self.input.escaped.connect(self.cancel_edit)
        self.send_button = QToolButton()
        self.send_button.setObjectName("SendButton")
        self.send_button.setIconSize(QSize(18, 18))
        self.send_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.send_button.clicked.connect(self._send_or_stop)
        self.hint = QLabel()
        self.hint.setObjectName("ComposerHint")

        box = QFrame()
        box.setObjectName("InputBox")
        box.setMaximumWidth(COLUMN_WIDTH - 48)
        row = QHBoxLayout(box)
        row.setContentsMargins(12, 6, 6, 6)
        row.setSpacing(6)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.input.focus_changed.connect(lambda focused: self._show_focus(box, focused))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 8, 24, 10)
        layout.setSpacing(4)
        layout.addWidget(self.edit_banner, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(box)
        layout.addWidget(self.hint, 0, Qt.AlignmentFlag.AlignHCenter)
        self.set_busy(False)
        self.set_next_reasoning_level("medium")

    @staticmethod
    def _show_focus(box: QFrame, focused: bool) -> None:
        box.setProperty("focused", focused)
        box.style().polish(box)

    def set_next_reasoning_level(self, reasoning_level: str) -> None:
        self.hint.setText(f"Next reply: {REASONING_LEVEL_NAMES[reasoning_level]} reasoning · "
                          "Enter to send, Shift+Enter for a new line")

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.send_button.setIcon(theme.icon("stop" if busy else "send", theme.palette().accent_text))
        self.send_button.setToolTip("Stop (Esc or ⌘.)" if busy else "Send (Enter)")
        self.send_button.setProperty("busy", busy)
        self.send_button.style().polish(self.send_button)

    def begin_edit(self, message_id: int, text: str) -> None:
        self.editing_id = message_id
        self.input.setPlainText(text)
        self.input.moveCursor(QTextCursor.MoveOperation.End)
        self.edit_banner.show()
        self.input.setFocus()

    def cancel_edit(self) -> None:
        if self.editing_id is not None:
            self.editing_id = None
            self.input.clear()
            self.edit_banner.hide()

    def submit(self) -> None:
        text = self.input.toPlainText().strip()
        if self._busy or not text:
            return
        if self.editing_id is not None:
            self.edit_submitted.emit(self.editing_id, text)
        else:
            self.send_requested.emit(text)

    def message_stored(self) -> None:
        """The message sent is in the store: only now is the input cleared, so a message that
        could not be sent (no model, a full disk) stays to be sent again."""
        self.editing_id = None
        self.edit_banner.hide()
        self.input.clear()

    def _send_or_stop(self) -> None:
        if self._busy:
            self.stop_requested.emit()
        else:
            self.submit()


class EmptyState(QWidget):
    """What a new chat shows before its first message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EmptyState")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        logo = QLabel()
        logo.setPixmap(theme.app_icon().pixmap(QSize(72, 72)))
        logo.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        title = QLabel("What can I help with?")
        title.setObjectName("EmptyTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.subtitle = QLabel("Runs entirely on this Mac. Nothing you type leaves it.")
        self.subtitle.setObjectName("EmptySubtitle")
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(logo)
        layout.addSpacing(10)
        layout.addWidget(title)
        layout.addWidget(self.subtitle)
        layout.addStretch(3)


class ChatView(QWidget):
    """The message column and the composer; emits what the user asks for, never acts on it."""

    send_requested = Signal(str)
    edit_submitted = Signal(int, str)
    stop_requested = Signal()
    regenerate_requested = Signal()
    reasoning_requested = Signal(int)  # the first message id of an assistant turn
    version_chosen = Signal(object, int)  # show version N of what follows a message (None: the start)
    copied = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatView")
        self.bubbles: list[MessageBubble] = []
        self._busy = False
        self._pending_text: str | None = None
        self._stick_to_bottom = True
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_pending)

        self.column = QWidget()
        self.column.setObjectName("MessageColumn")
        self.column.setMaximumWidth(COLUMN_WIDTH)
        self.column_layout = QVBoxLayout(self.column)
        self.column_layout.setContentsMargins(28, 18, 28, 18)
        self.column_layout.setSpacing(6)
        self.column_layout.addStretch(1)
        centred = QWidget()
        centred.setObjectName("MessageColumn")
        row = QHBoxLayout(centred)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.column)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("MessageScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(centred)
        bar = self.scroll.verticalScrollBar()
        bar.rangeChanged.connect(lambda _low, high: bar.setValue(high) if self._stick_to_bottom else None)
        bar.valueChanged.connect(lambda value: setattr(self, "_stick_to_bottom", value >= bar.maximum() - 24))
        self.empty_state = EmptyState()

        self.composer = Composer()
        self.composer.send_requested.connect(self.send_requested)
        self.composer.edit_submitted.connect(self.edit_submitted)
        self.composer.stop_requested.connect(self.stop_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.empty_state, 1)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.composer)
        self._show_empty_state()
        theme.watcher().changed.connect(self._apply_theme)  # a bound method: disconnected with the view

    # -- whole conversations -------------------------------------------------------------------

    def show_turns(self, turns: list[Turn]) -> None:
        for bubble in self.bubbles:
            bubble.deleteLater()
        self.bubbles = []
        self.composer.cancel_edit()
        for turn in turns:
            self._add_bubble(turn.role).show_turn(turn)
        self._stick_to_bottom = True
        self._refresh()

    def add_user_turn(self, turn: Turn) -> None:
        self._add_bubble("user").show_turn(turn)
        self._stick_to_bottom = True
        self._refresh()

    def remove_turns_from(self, index: int) -> None:
        for bubble in self.bubbles[index:]:
            bubble.deleteLater()
        del self.bubbles[index:]
        self._refresh()

    # -- the reply being streamed --------------------------------------------------------------

    def begin_reply(self, reasoning_level: str) -> None:
        bubble = self._add_bubble("assistant")
        bubble.set_reasoning_level(reasoning_level)
        bubble.set_actions_enabled(False, last=True)
        bubble.copy_button.setEnabled(False)
        self._pending_text = None
        self._refresh()

    def show_reply_text(self, text: str) -> None:
        """The reply's whole visible text so far; drawn on the next render tick."""
        self._pending_text = text
        if not self._render_timer.isActive():
            self._render_timer.start()

    def show_reply_thinking(self, seconds: float) -> None:
        if self.bubbles and self.bubbles[-1].role == "assistant":
            self.bubbles[-1].set_thinking(seconds)

    def finish_reply(self, turn: Turn | None) -> None:
        """The reply ended; `turn` is what was stored (None when nothing was)."""
        self._render_timer.stop()
        self._pending_text = None
        if not self.bubbles or self.bubbles[-1].role != "assistant":
            return
        if turn is None:
            self.bubbles.pop().deleteLater()
        else:
            self.bubbles[-1].show_turn(turn)
            self.bubbles[-1].copy_button.setEnabled(True)
        self._refresh()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.composer.set_busy(busy)
        self._refresh()

    # -- internals -----------------------------------------------------------------------------

    def _add_bubble(self, role: str) -> MessageBubble:
        bubble = MessageBubble(role)
        bubble.copy_clicked.connect(lambda: self._copy(bubble.text))
        bubble.view.copied.connect(self.copied)
        bubble.version_chosen.connect(self.version_chosen)
        if role == "user":
            bubble.edit_clicked.connect(lambda: self.composer.begin_edit(bubble.first_id, bubble.text))
        else:
            bubble.regenerate_clicked.connect(self.regenerate_requested)
            bubble.reasoning_clicked.connect(
                lambda: self.reasoning_requested.emit(bubble.first_id) if bubble.first_id is not None else None
            )
        self.column_layout.insertWidget(self.column_layout.count() - 1, bubble)
        self.bubbles.append(bubble)
        return bubble

    def _copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.copied.emit(text)

    def _render_pending(self) -> None:
        if self._pending_text is not None and self.bubbles:
            self.bubbles[-1].set_text(self._pending_text)
            self._pending_text = None

    def _refresh(self) -> None:
        last_assistant = next((b for b in reversed(self.bubbles) if b.role == "assistant"), None)
        for bubble in self.bubbles:
            bubble.set_actions_enabled(not self._busy, last=bubble is last_assistant and bubble is self.bubbles[-1])
        self._show_empty_state()

    def _show_empty_state(self) -> None:
        empty = not self.bubbles
        self.empty_state.setVisible(empty)
        self.scroll.setVisible(not empty)

    def _apply_theme(self, _colours: theme.Palette) -> None:
        for bubble in self.bubbles:
            bubble.apply_theme()
        self.composer.set_busy(self._busy)
