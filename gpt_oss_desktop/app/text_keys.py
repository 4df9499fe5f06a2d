"""Text-editing keys win inside text fields.

A window shortcut and a text field's own key binding can share a key: Ctrl+Backspace deletes a
word on Linux and Windows, and is ⌘⌫ (delete to the start of the line) on a Mac, where Finder
also uses it for Move to Trash. Qt asks the focused widget first with a ShortcutOverride event;
this filter answers "mine" for the platform's editing keys whenever an editable text field has
the focus, so typing never triggers a command.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QLineEdit, QPlainTextEdit, QTextEdit

_STANDARD = QKeySequence.StandardKey
EDITING_KEYS = (
    _STANDARD.Backspace, _STANDARD.Delete, _STANDARD.DeleteStartOfWord, _STANDARD.DeleteEndOfWord,
    _STANDARD.DeleteEndOfLine, _STANDARD.DeleteCompleteLine, _STANDARD.MoveToStartOfLine,
    _STANDARD.MoveToEndOfLine, _STANDARD.MoveToNextWord, _STANDARD.MoveToPreviousWord,
    _STANDARD.MoveToStartOfDocument, _STANDARD.MoveToEndOfDocument, _STANDARD.MoveToStartOfBlock,
    _STANDARD.MoveToEndOfBlock, _STANDARD.SelectStartOfLine, _STANDARD.SelectEndOfLine,
    _STANDARD.SelectNextWord, _STANDARD.SelectPreviousWord, _STANDARD.SelectStartOfDocument,
    _STANDARD.SelectEndOfDocument, _STANDARD.SelectAll, _STANDARD.Undo, _STANDARD.Redo, _STANDARD.Cut,
    _STANDARD.Copy, _STANDARD.Paste,
)
_LINE_DELETES = (Qt.Key.Key_Backspace, Qt.Key.Key_Delete)
"""With Ctrl (⌘ on a Mac): delete a word, or to the line's start or end, in every Qt text field,
whether or not the platform lists it among its standard keys."""


def is_text_field(widget: QObject | None) -> bool:
    if isinstance(widget, QLineEdit):
        return not widget.isReadOnly()
    if isinstance(widget, (QPlainTextEdit, QTextEdit)):
        return not widget.isReadOnly()
    return False


def is_editing_key(event: QKeyEvent) -> bool:
    if event.key() in _LINE_DELETES and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
        return True
    return any(event.matches(key) for key in EDITING_KEYS)


class TextKeysFirst(QObject):
    """Install on the application: `QApplication.instance().installEventFilter(TextKeysFirst(parent))`."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and watched is QApplication.focusWidget()
            and is_text_field(watched)
            and is_editing_key(event)
        ):
            event.accept()  # the field handles it as a key press; no shortcut fires
            return True
        return False
