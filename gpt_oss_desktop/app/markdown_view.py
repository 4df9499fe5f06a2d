"""Messages as Markdown: Qt's GitHub-dialect parser for prose, pygments for fenced code, a
Copy link on every code block, and math typeset by matplotlib (app/math_text.py).

Prose goes through `QTextCursor.insertMarkdown` (raw HTML in model output is not interpreted);
each fenced block becomes a two-row table (language and Copy, then the code) whose text takes
its colours from a pygments style, so the whole message stays one QTextDocument that selects,
copies and scales like native text. A fence still open while a reply streams is drawn as code.
Math is cut out of the prose before Markdown sees it (its `_` and `*` are not emphasis), held
by a private-use placeholder, and replaced by its image afterwards. Tables get rules and a
header row, block quotes a tinted, indented block.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache

from pygments.lexers import get_lexer_by_name
from pygments.lexers.special import TextLexer
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from pygments.util import ClassNotFound
from PySide6.QtCore import QRegularExpression, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QImage,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextFrameFormat,
    QTextImageFormat,
    QTextLength,
    QTextTable,
    QTextTableFormat,
)
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser

from .math_text import MathError, find_math, typeset
from .theme import Palette

COPY_SCHEME = "copy"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^\n]*$", re.MULTILINE)
_MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML
_CODE_TABLE = QTextFormat.Property.UserProperty + 1
"""Set on the tables that hold fenced code, so table styling leaves them alone."""
_INLINE, _DISPLAY, _END = "\ue000", "\ue001", "\ue002"
_PLACEHOLDER = QRegularExpression(f"[{_INLINE}{_DISPLAY}](\\d+){_END}")
MATH_SCHEME = "math"


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


def render_markdown(document: QTextDocument, text: str, colours: Palette, pixels_per_point: float = 1.0) -> list[str]:
    """Replace `document`'s content with `text` rendered; returns the code of each block, in
    the order of their `copy:N` links. `pixels_per_point` sizes the math images."""
    document.clear()
    cursor = QTextCursor(document)
    code_blocks: list[str] = []
    formulas: list[tuple[str, bool]] = []
    for segment in split_fences(text):
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if segment.language is None:
            cursor.insertMarkdown(_hold_math(segment.text, formulas), _MARKDOWN)
        else:
            _insert_code_block(cursor, segment, len(code_blocks), colours)
            code_blocks.append(segment.text)
    _mark_inline_code(document, colours)
    _style_tables_and_quotes(document, colours)
    _place_math(document, formulas, colours.text, pixels_per_point)
    return code_blocks


def _hold_math(text: str, formulas: list[tuple[str, bool]]) -> str:
    """`text` with each formula replaced by a numbered placeholder (appended to `formulas`);
    display math gets a paragraph of its own."""
    parts, position = [], 0
    for span in find_math(text):
        parts.append(text[position : span.start])
        number = len(formulas)
        formulas.append((span.tex, span.display))
        parts.append(f"\n\n{_DISPLAY}{number}{_END}\n\n" if span.display else f"{_INLINE}{number}{_END}")
        position = span.end
    parts.append(text[position:])
    return "".join(parts)


def _place_math(document: QTextDocument, formulas: list[tuple[str, bool]], colour: str, pixels_per_point: float) -> None:
    """Swap each placeholder for its formula."""
    cursor = document.find(_PLACEHOLDER)
    while not cursor.isNull():
        tex, display = formulas[int(cursor.selectedText()[1:-1])]
        cursor.removeSelectedText()
        insert_formula(cursor, tex, display=display, colour=colour, pixels_per_point=pixels_per_point)
        if display:  # alone in its paragraph (see _hold_math)
            _align_block(cursor, Qt.AlignmentFlag.AlignHCenter)
        cursor = document.find(_PLACEHOLDER, cursor)


def insert_text_with_math(cursor: QTextCursor, text: str, char_format: QTextCharFormat, pixels_per_point: float) -> None:
    """Plain `text` in `char_format` (the reasoning panel's), with its math typeset in the
    format's colour."""
    colour = char_format.foreground().color().name()
    position = 0
    for span in find_math(text):
        cursor.insertText(text[position : span.start], char_format)
        if span.display:  # a centred line of its own
            cursor.insertBlock()
            _align_block(cursor, Qt.AlignmentFlag.AlignHCenter)
        insert_formula(cursor, span.tex, display=span.display, colour=colour, pixels_per_point=pixels_per_point)
        if span.display:
            cursor.insertBlock()
            _align_block(cursor, Qt.AlignmentFlag.AlignLeft)
        cursor.setCharFormat(char_format)
        position = span.end
    cursor.insertText(text[position:], char_format)


def insert_formula(cursor: QTextCursor, tex: str, *, display: bool, colour: str, pixels_per_point: float) -> None:
    """The typeset image of `tex` at the cursor (larger for a display formula); TeX mathtext
    cannot read stays as its source in code type, the reason in its tooltip."""
    document = cursor.document()
    point_size = QGuiApplication.font().pointSizeF() * (1.3 if display else 1.1)
    device_ratio = max(1.0, QGuiApplication.instance().devicePixelRatio())  # sharp on a Retina screen
    try:
        image = typeset(tex, point_size=point_size, colour=colour, scale=pixels_per_point * device_ratio)
    except MathError as error:
        source = QTextCharFormat()
        source.setFont(monospace_font())
        source.setToolTip(f"This formula could not be typeset: {error}")
        cursor.insertText(f"$${tex}$$" if display else f"${tex}$", source)
        return
    name = f"{MATH_SCHEME}:{hashlib.sha1(image.png).hexdigest()[:16]}"
    pixels = QImage.fromData(image.png)
    pixels.setDevicePixelRatio(device_ratio)
    document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), pixels)
    picture = QTextImageFormat()
    picture.setName(name)
    picture.setWidth(image.width_pt * pixels_per_point)
    picture.setHeight(image.height_pt * pixels_per_point)
    picture.setVerticalAlignment(QTextCharFormat.VerticalAlignment.AlignMiddle)
    picture.setToolTip(tex)
    cursor.insertImage(picture)


def _align_block(cursor: QTextCursor, alignment: Qt.AlignmentFlag) -> None:
    block = cursor.blockFormat()
    block.setAlignment(alignment)
    cursor.setBlockFormat(block)


def _style_tables_and_quotes(document: QTextDocument, colours: Palette) -> None:
    """Rules around the cells and a shaded header row for Markdown tables; a tinted, indented
    block in the muted colour for block quotes (Qt draws neither)."""
    for frame in document.rootFrame().childFrames():
        if isinstance(frame, QTextTable) and not frame.format().property(_CODE_TABLE):
            table_format = frame.format()
            table_format.setBorder(1)
            table_format.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
            table_format.setBorderBrush(QColor(colours.border))
            table_format.setBorderCollapse(True)
            table_format.setCellPadding(6)
            table_format.setCellSpacing(0)
            table_format.setTopMargin(6)
            table_format.setBottomMargin(6)
            frame.setFormat(table_format)
            for column in range(frame.columns()):
                cell = frame.cellAt(0, column)
                cell_format = cell.format()
                cell_format.setBackground(QColor(colours.code_header))
                cell.setFormat(cell_format)
    block = document.begin()
    while block.isValid():
        if block.blockFormat().intProperty(QTextFormat.Property.BlockQuoteLevel) > 0:
            cursor = QTextCursor(block)
            quote = QTextBlockFormat()
            quote.setBackground(QColor(colours.user_bubble))
            quote.setLeftMargin(18 * block.blockFormat().intProperty(QTextFormat.Property.BlockQuoteLevel))
            quote.setTopMargin(2)
            quote.setBottomMargin(2)
            cursor.mergeBlockFormat(quote)
            cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
            muted = QTextCharFormat()
            muted.setForeground(QColor(colours.muted))
            cursor.mergeCharFormat(muted)
        block = block.next()


def _insert_code_block(cursor: QTextCursor, segment: Segment, number: int, colours: Palette) -> None:
    table_format = QTextTableFormat()
    table_format.setBorder(0)
    table_format.setCellPadding(7)
    table_format.setCellSpacing(0)
    table_format.setTopMargin(6)
    table_format.setBottomMargin(8)
    table_format.setBackground(QColor(colours.code_background))
    table_format.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
    table_format.setProperty(_CODE_TABLE, True)
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
        self.code_blocks = render_markdown(self.document(), text, colours, self.logicalDpiY() / 72)

    def show_plain(self, text: str) -> None:
        self.code_blocks = []
        self.setPlainText(text)

    def copy_code_block(self, number: int) -> None:
        QGuiApplication.clipboard().setText(self.code_blocks[number])
        self.copied.emit(self.code_blocks[number])

    def _follow(self, url: QUrl) -> None:
        if url.scheme() == COPY_SCHEME:
            self.copy_code_block(int(url.path()))
        elif url.scheme() in ("http", "https", "mailto", "file"):  # file: a cited library document
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
