"""The Low / Medium / High reasoning control: a segmented button group, as in macOS toolbars."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QWidget

from gpt_oss_desktop.mlx_model import REASONING_LEVELS

from .chat_view import REASONING_LEVEL_NAMES

_POSITIONS = ("first", "middle", "last")


class ReasoningToggle(QWidget):
    reasoning_level_changed = Signal(str)

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
        for reasoning_level, position in zip(REASONING_LEVELS, _POSITIONS, strict=True):
            button = QPushButton(REASONING_LEVEL_NAMES[reasoning_level])
            button.setObjectName("Segment")
            button.setProperty("position", position)
            button.setCheckable(True)
            button.clicked.connect(
                lambda _checked, chosen=reasoning_level: self.reasoning_level_changed.emit(chosen))
            self.group.addButton(button)
            self.buttons[reasoning_level] = button
            layout.addWidget(button)
        self.set_reasoning_level("medium")

    def reasoning_level(self) -> str:
        return next(reasoning_level for reasoning_level, button in self.buttons.items() if button.isChecked())

    def set_reasoning_level(self, reasoning_level: str) -> None:
        """Show `reasoning_level` without emitting `reasoning_level_changed`."""
        self.buttons[reasoning_level].setChecked(True)
