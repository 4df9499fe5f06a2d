"""The Low / Medium / High reasoning control: a segmented button group, as in macOS toolbars."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QWidget

from .chat_view import LEVEL_NAMES
from .settings import REASONING_LEVELS

_POSITIONS = ("first", "middle", "last")


class ReasoningToggle(QWidget):
    level_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReasoningToggle")
        self.setToolTip(
            "How long the model reasons before answering. Applies to the next reply in this chat (⌘1, ⌘2, ⌘3)."
        )
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QPushButton] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        label = QLabel("Reasoning")
        label.setObjectName("ToggleLabel")
        layout.addWidget(label)
        layout.addSpacing(8)
        for level, position in zip(REASONING_LEVELS, _POSITIONS, strict=True):
            button = QPushButton(LEVEL_NAMES[level])
            button.setObjectName("Segment")
            button.setProperty("position", position)
            button.setCheckable(True)
            button.clicked.connect(lambda _checked, level=level: self.level_changed.emit(level))
            self.group.addButton(button)
            self.buttons[level] = button
            layout.addWidget(button)
        self.set_level("medium")

    def level(self) -> str:
        return next(level for level, button in self.buttons.items() if button.isChecked())

    def set_level(self, level: str) -> None:
        """Show `level` without emitting `level_changed`."""
        self.buttons[level].setChecked(True)
