"""Messages as Markdown: Qt's GitHub-dialect parser for prose, pygments for fenced code, and a
Copy link on every code block.

Prose goes through `QTextCursor.insertMarkdown` (raw HTML in model output is not interpreted);
each fenced block becomes a two-row table (language and Copy, then the code) whose text takes
its colours from a pygments style, so the whole message stays one QTextDocument that selects,
copies and scales like native text. A fence still open while a reply streams is drawn as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pygments.lexers import get_lexer_by_name
from pygments.lexers.special import TextLexer
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from pygments.util import ClassNotFound
from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextLength,
    QTextTableFormat,
)
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser

from .theme import Palette

COPY_SCHEME = "copy"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^\n]*$", re.MULTILINE)
_MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML


@dataclass(frozen=True)
class Segment:
    """Prose (`language` None) or the code of one fenced block."""

    text: str
    language: str | None = None


def split_fences(text: str) -> list[Segment]:
    """Prose and fenced code blocks in order; an unclosed fence runs to the end of the text."""
    segments: list[Segment] = []
    position = 0
    while (opening := _FENCE.search(text, position)) is not None:
        if prose := text[position : opening.start()].strip("\n"):
            segments.append(Segment(prose))
        fence, language = opening.group(1), opening.group(2).lower()
        closing = re.compile(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        body_start = min(opening.end() + 1, len(text))
        end = closing.search(text, body_start)
        code = text[body_start : end.start() if end else len(text)]
        segments.append(Segment(code.rstrip("\n"), language or "text"))
        position = end.end() if end else len(text)
    if rest := text[position:].strip("\n"):
        segments.append(Segment(rest))
    return segments


def monospace_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


@cache
def _token_formats(style_name: str) -> dict[_TokenType, QTextCharFormat]:
    formats: dict[_TokenType, QTextCharFormat] = {}
    for token_type, style in get_style_by_name(style_name):
        char = QTextCharFormat()
        if style["color"]:
            char.setForeground(QColor(f"#{style['color']}"))
        if style["bold"]:
            char.setFontWeight(QFont.Weight.Bold)
        if style["italic"]:
            char.setFontItalic(True)
        formats[token_type] = char
    return formats


def _lexer(language: str):
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def render_markdown(document: QTextDocument, text: str, colours: Palette) -> list[str]:
    """Replace `document`'s content with `text` rendered; returns the code of each block, in
    the order of their `copy:N` links."""
    document.clear()
    cursor = QTextCursor(document)
    code_blocks: list[str] = []
    for segment in split_fences(text):
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if segment.language is None:
            cursor.insertMarkdown(segment.text, _MARKDOWN)
        else:
            _insert_code_block(cursor, segment, len(code_blocks), colours)
            code_blocks.append(segment.text)
    _mark_inline_code(document, colours)
    return code_blocks


def _insert_code_block(cursor: QTextCursor, segment: Segment, number: int, colours: Palette) -> None:
    table_format = QTextTableFormat()
    table_format.setBorder(0)
    table_format.setCellPadding(7)
    table_format.setCellSpacing(0)
    table_format.setTopMargin(6)
    table_format.setBottomMargin(8)
    table_format.setBackground(QColor(colours.code_background))
    table_format.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
    table = cursor.insertTable(2, 2, table_format)
    table.mergeCells(1, 0, 1, 2)

    header = QTextCharFormat()
    header.setForeground(QColor(colours.muted))
    header.setFontPointSize(max(QGuiApplication.font().pointSizeF() - 1, 8))
    for column in (0, 1):
        cell_format = table.cellAt(0, column).format()
        cell_format.setBackground(QColor(colours.code_header))
        table.cellAt(0, column).setFormat(cell_format)
    table.cellAt(0, 0).firstCursorPosition().insertText(segment.language or "text", header)
    copy_cursor = table.cellAt(0, 1).firstCursorPosition()
    block_format = copy_cursor.blockFormat()
    block_format.setAlignment(Qt.AlignmentFlag.AlignRight)
    copy_cursor.setBlockFormat(block_format)
    link = QTextCharFormat(header)
    link.setForeground(QColor(colours.accent))
    link.setAnchor(True)
    link.setAnchorHref(f"{COPY_SCHEME}:{number}")
    link.setToolTip("Copy this code")
    copy_cursor.insertText("Copy", link)

    code_cursor = table.cellAt(1, 0).firstCursorPosition()
    base = QTextCharFormat()
    base.setFont(monospace_font())
    base.setForeground(QColor(colours.text))
    formats = _token_formats(colours.code_style)
    for token_type, value in _lexer(segment.language or "text").get_tokens(segment.text):
        char = QTextCharFormat(base)
        while token_type not in formats and token_type.parent is not None:
            token_type = token_type.parent
        if token_type in formats:
            char.merge(formats[token_type])
        code_cursor.insertText(value, char)


def _mark_inline_code(document: QTextDocument, colours: Palette) -> None:
    """Give `inline code` (monospace text outside code blocks) a tinted background."""
    block = document.begin()
    while block.isValid():
        if QTextCursor(block).currentTable() is None:
            iterator = block.begin()
            while not iterator.atEnd():
                fragment = iterator.fragment()
                if fragment.isValid() and fragment.charFormat().fontFixedPitch():
                    cursor = QTextCursor(document)
                    cursor.setPosition(fragment.position())
                    cursor.setPosition(fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor)
                    tint = QTextCharFormat()
                    tint.setBackground(QColor(colours.code_header))
                    cursor.mergeCharFormat(tint)
                iterator += 1
        block = block.next()


class MessageView(QTextBrowser):
    """A read-only, self-sizing view of one message, with the Copy links of its code blocks."""

    copied = Signal(str)  # what was put on the clipboard

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.code_blocks: list[str] = []
        self.height_cap: int | None = None
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self.anchorClicked.connect(self._follow)

    def show_markdown(self, text: str, colours: Palette) -> None:
        self.code_blocks = render_markdown(self.document(), text, colours)

    def show_plain(self, text: str) -> None:
        self.code_blocks = []
        self.setPlainText(text)

    def copy_code_block(self, number: int) -> None:
        QGuiApplication.clipboard().setText(self.code_blocks[number])
        self.copied.emit(self.code_blocks[number])

    def _follow(self, url: QUrl) -> None:
        if url.scheme() == COPY_SCHEME:
            self.copy_code_block(int(url.path()))
        elif url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)

    def full_height(self) -> int:
        return int(self.document().size().height()) + 4

    def set_height_cap(self, pixels: int | None) -> None:
        """Show at most `pixels` of the message (None: all of it); the rest is clipped."""
        self.height_cap = pixels
        self._fit_height()

    def _fit_height(self) -> None:
        height = self.full_height()
        self.setFixedHeight(height if self.height_cap is None else min(height, self.height_cap))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit_height()

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), int(self.document().size().height()) + 4)
