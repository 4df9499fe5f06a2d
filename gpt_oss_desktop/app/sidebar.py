"""The list of chats: new, rename in place, delete, export, and search across all of them.

A view only: it shows what it is given and emits what the user asks for; the window does the
storage work and hands back the updated list.
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QKeyEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .store import ConversationRecord, SearchHit

ID_ROLE = Qt.ItemDataRole.UserRole
SUBTITLE_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_DELAY_MS = 150
SEARCH_PAGE = 50
"""Search results shown at first, and added by each "Show more results"."""


def when(timestamp: float, now: dt.datetime | None = None) -> str:
    """'14:05' today, 'Yesterday', a weekday this week, else the date."""
    now = now or dt.datetime.now()
    moment = dt.datetime.fromtimestamp(timestamp)
    days = (now.date() - moment.date()).days
    if days <= 0:
        return moment.strftime("%H:%M")
    if days == 1:
        return "Yesterday"
    if days < 7:
        return moment.strftime("%A")
    return moment.strftime("%d %b %Y")


class ConversationDelegate(QStyledItemDelegate):
    """Two lines per chat (title, then date or search snippet) on a rounded selection."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(option.rect.width(), 2 * option.fontMetrics.height() + 18)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        colours = theme.palette()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = option.rect.adjusted(6, 2, -6, -2)
        if option.state & QStyle.StateFlag.State_Selected:
            path = QPainterPath()
            path.addRoundedRect(card, 7, 7)
            painter.fillPath(path, QColor(colours.selection))
            if option.state & QStyle.StateFlag.State_HasFocus:  # the keyboard is in the list
                painter.setPen(QPen(QColor(colours.accent), 2))
                painter.drawPath(path)
        elif option.state & QStyle.StateFlag.State_MouseOver:
            path = QPainterPath()
            path.addRoundedRect(card, 7, 7)
            painter.fillPath(path, QColor(colours.border))
        text_rect = card.adjusted(10, 6, -10, -6)
        line = option.fontMetrics.height()
        title_font = QFont(option.font)
        title_font.setWeight(title_font.Weight.DemiBold)
        painter.setFont(title_font)
        painter.setPen(QColor(colours.text))
        title = index.data(Qt.ItemDataRole.DisplayRole) or ""
        elided = painter.fontMetrics().elidedText(title, Qt.TextElideMode.ElideRight, text_rect.width())
        painter.drawText(QRect(text_rect.left(), text_rect.top(), text_rect.width(), line), Qt.AlignmentFlag.AlignLeft, elided)
        painter.setFont(option.font)
        painter.setPen(QColor(colours.muted))
        subtitle = index.data(SUBTITLE_ROLE) or ""
        elided = option.fontMetrics.elidedText(subtitle, Qt.TextElideMode.ElideRight, text_rect.width())
        painter.drawText(
            QRect(text_rect.left(), text_rect.top() + line + 2, text_rect.width(), line), Qt.AlignmentFlag.AlignLeft, elided
        )
        painter.restore()


class ConversationSidebar(QWidget):
    conversation_selected = Signal(int)
    new_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    export_requested = Signal(int, str)  # "markdown" or "json"
    search_changed = Signal(str)
    chat_entered = Signal()  # Return on a chat, or on a search result: go and type in it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._filling = False

        title = QLabel("Chats")
        title.setObjectName("SidebarTitle")
        self.new_button = QToolButton()
        self.new_button.setObjectName("NewChatButton")
        self.new_button.setIconSize(QSize(18, 18))
        self.new_button.setToolTip("New Chat (⌘N)")
        self.new_button.setAutoRaise(True)
        self.new_button.clicked.connect(self.new_requested)
        self.search = QLineEdit()
        self.search.setObjectName("SearchField")
        self.search.setPlaceholderText("Search all chats")
        self.search.setClearButtonEnabled(True)
        self.search_icon = self.search.addAction(theme.icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.search_changed.emit(self.search.text().strip()))
        self.search.textChanged.connect(self._search_edited)
        self.search.installEventFilter(self)
        self.search_limit = SEARCH_PAGE
        self.more_button = QPushButton("Show more results")
        self.more_button.setObjectName("MoreResults")
        self.more_button.clicked.connect(self._show_more)
        self.more_button.hide()
        self.empty = QLabel()
        self.empty.setObjectName("SidebarEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.empty.setWordWrap(True)

        self.list = QListWidget()
        self.list.setObjectName("ConversationList")
        self.list.setItemDelegate(ConversationDelegate(self.list))
        self.list.setMouseTracking(True)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._renamed)
        self.list.installEventFilter(self)

        header = QHBoxLayout()
        header.setContentsMargins(14, 10, 8, 4)
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(header)
        search_row = QHBoxLayout()
        search_row.setContentsMargins(10, 0, 10, 2)
        search_row.addWidget(self.search)
        layout.addLayout(search_row)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.more_button)
        layout.addWidget(self.empty)
        layout.addStretch(0)
        self._apply_theme(theme.palette())
        theme.watcher().changed.connect(self._apply_theme)

    def _apply_theme(self, colours: theme.Palette) -> None:
        self.new_button.setIcon(theme.icon("compose", colours.text))
        self.search_icon.setIcon(theme.icon("search", colours.muted))
        self.list.viewport().update()

    # -- what is shown -------------------------------------------------------------------------

    def show_conversations(self, records: list[ConversationRecord], selected: int | None) -> None:
        self._fill([(r.id, r.title, when(r.updated_at)) for r in records], selected)
        self.empty.setText("" if records else "No chats yet.")
        self.empty.setVisible(not records)
        self.more_button.hide()

    def show_search_results(self, hits: list[SearchHit], selected: int | None, *, more: bool = False) -> None:
        """`hits` for the search field's text; `more` when the store holds further ones."""
        self._fill([(h.conversation_id, h.title, h.snippet or "Title matches") for h in hits], selected)
        self.empty.setText("" if hits else f"No chat mentions “{self.search.text().strip()}”.")
        self.empty.setVisible(not hits)
        self.more_button.setText(f"Showing the first {len(hits)} · Show more results")
        self.more_button.setVisible(more)

    def searching(self) -> bool:
        return bool(self.search.text().strip())

    def select(self, conversation_id: int | None) -> None:
        """Highlight a chat without emitting `conversation_selected`."""
        self._filling = True
        item = self._item(conversation_id)
        if item is None:
            self.list.setCurrentRow(-1)
        else:
            self.list.setCurrentItem(item)
        self._filling = False

    def rename(self, conversation_id: int) -> None:
        """Start editing a chat's title in place."""
        item = self._item(conversation_id)
        if item is not None:
            self.list.setCurrentItem(item)
            self.list.editItem(item)

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    # -- internals -----------------------------------------------------------------------------

    def _fill(self, rows: list[tuple[int, str, str]], selected: int | None) -> None:
        """Bring the list to `rows` in place: rows that stay keep their items (moved, retitled),
        so a refresh after each reply touches the few rows that changed, not thousands."""
        self._filling = True
        wanted = {conversation_id for conversation_id, _title, _subtitle in rows}
        for row in reversed(range(self.list.count())):
            if self.list.item(row).data(ID_ROLE) not in wanted:
                self.list.takeItem(row)
        rows_by_id = {self.list.item(row).data(ID_ROLE): row for row in range(self.list.count())}
        for position, (conversation_id, title, subtitle) in enumerate(rows):
            item = self.list.item(position)
            if item is None or item.data(ID_ROLE) != conversation_id:
                if conversation_id in rows_by_id:
                    item = self.list.takeItem(self._row_of(conversation_id, position))
                else:
                    item = QListWidgetItem()
                    item.setData(ID_ROLE, conversation_id)
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.list.insertItem(position, item)
            if item.text() != title:
                item.setText(title)
                item.setToolTip(title)
            if item.data(SUBTITLE_ROLE) != subtitle:
                item.setData(SUBTITLE_ROLE, subtitle)
        current = self._item(selected)
        if current is None:
            self.list.setCurrentRow(-1)
        elif current is not self.list.currentItem():
            self.list.setCurrentItem(current)
        self._filling = False

    def _row_of(self, conversation_id: int, start: int) -> int:
        """The row of a chat known to be at `start` or below it."""
        row = start
        while self.list.item(row).data(ID_ROLE) != conversation_id:
            row += 1
        return row

    def _item(self, conversation_id: int | None) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            if self.list.item(row).data(ID_ROLE) == conversation_id:
                return self.list.item(row)
        return None

    def _search_edited(self, _text: str) -> None:
        self.search_limit = SEARCH_PAGE
        self._search_timer.start()

    def _show_more(self) -> None:
        self.search_limit += SEARCH_PAGE
        self.search_changed.emit(self.search.text().strip())

    def _current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None and not self._filling:
            self.conversation_selected.emit(current.data(ID_ROLE))

    def _renamed(self, item: QListWidgetItem) -> None:
        if not self._filling:
            self.rename_requested.emit(item.data(ID_ROLE), item.text())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress:
            if watched is self.search:
                return self._search_key(event)
            if watched is self.list and self.list.state() != QAbstractItemView.State.EditingState:
                return self._list_key(event)
        return super().eventFilter(watched, event)

    def _list_key(self, event: QKeyEvent) -> bool:
        """Delete or Backspace deletes the chat; Return goes to its composer."""
        conversation_id = self.current_id()
        if conversation_id is None:
            return False
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and not event.modifiers():
            self.delete_requested.emit(conversation_id)
            return True
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.chat_entered.emit()
            return True
        return False

    def _search_key(self, event: QKeyEvent) -> bool:
        """Esc clears the search (and a second Esc leaves it); ↓ goes into the results;
        Return opens the selected result, or the first."""
        if event.key() == Qt.Key.Key_Escape:
            if self.search.text():
                self.search.clear()
                self._search_timer.stop()
                self.search_changed.emit("")
            else:
                self.chat_entered.emit()
            return True
        if event.key() == Qt.Key.Key_Down and self.list.count():
            self._flush_search()
            self.list.setFocus()
            if self.list.currentRow() < 0:
                self.list.setCurrentRow(0)
            return True
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._flush_search()
            if self.list.count():
                if self.list.currentRow() < 0:
                    self.list.setCurrentRow(0)
                else:
                    self.conversation_selected.emit(self.current_id())
                self.chat_entered.emit()
            return True
        return False

    def _flush_search(self) -> None:
        """Show the results for what is typed now, not after the typing pause."""
        if self._search_timer.isActive():
            self._search_timer.stop()
            self.search_changed.emit(self.search.text().strip())

    def _context_menu(self, position) -> None:
        item = self.list.itemAt(position)
        if item is None:
            return
        conversation_id = item.data(ID_ROLE)
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.rename(conversation_id))
        menu.addAction("Export as Markdown…", lambda: self.export_requested.emit(conversation_id, "markdown"))
        menu.addAction("Export as JSON…", lambda: self.export_requested.emit(conversation_id, "json"))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete_requested.emit(conversation_id))
        menu.exec(self.list.viewport().mapToGlobal(position))
