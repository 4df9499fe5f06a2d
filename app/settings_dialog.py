"""Settings (⌘,): the model, sampling, reply length, context length and developer instructions."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .chat_view import LEVEL_NAMES
from .settings import REASONING_LEVELS, Key, Settings

CONTEXT_CHOICES = (0, 4096, 8192, 16384, 32768, 65536, 131072)


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SettingsDialog")
        self.setWindowTitle("Settings")
        self.settings = settings

        self.model = QLineEdit(settings.value(Key.MODEL))
        self.model.setPlaceholderText("openai/gpt-oss-20b or a model folder")
        browse = QPushButton("Choose Folder…")
        browse.clicked.connect(self._choose_folder)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(browse)

        self.context = QComboBox()
        for tokens in CONTEXT_CHOICES:
            self.context.addItem("Automatic (what fits this Mac)" if tokens == 0 else f"{tokens:,} tokens", tokens)
        self.context.setCurrentIndex(max(0, self.context.findData(settings.value(Key.CONTEXT_LENGTH))))
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(settings.value(Key.TEMPERATURE))
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.01, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(settings.value(Key.TOP_P))
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(16, 131072)
        self.max_tokens.setSingleStep(256)
        self.max_tokens.setValue(settings.value(Key.MAX_NEW_TOKENS))
        self.default_level = QComboBox()
        for level in REASONING_LEVELS:
            self.default_level.addItem(LEVEL_NAMES[level], level)
        self.default_level.setCurrentIndex(REASONING_LEVELS.index(settings.default_reasoning()))
        self.instructions = QPlainTextEdit(settings.value(Key.DEVELOPER_INSTRUCTIONS))
        self.instructions.setPlaceholderText("For example: Answer concisely. Use British spelling.")
        self.instructions.setMinimumHeight(90)

        form = QFormLayout()
        form.addRow("Model:", model_row)
        form.addRow("Context length:", self.context)
        form.addRow("Temperature:", self.temperature)
        form.addRow("Top P:", self.top_p)
        form.addRow("Maximum tokens per reply:", self.max_tokens)
        form.addRow("Reasoning for new chats:", self.default_level)
        form.addRow("Developer instructions:", self.instructions)
        note = QLabel(
            "Developer instructions apply to chats started from now on; each chat keeps the ones it began with. "
            "A new model or context length takes effect when the model is loaded again."
        )
        note.setObjectName("SettingsNote")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a Model Folder")
        if folder:
            self.model.setText(folder)

    def accept(self) -> None:
        self.settings.set_value(Key.MODEL, self.model.text().strip())
        self.settings.set_value(Key.CONTEXT_LENGTH, int(self.context.currentData()))
        self.settings.set_value(Key.TEMPERATURE, self.temperature.value())
        self.settings.set_value(Key.TOP_P, self.top_p.value())
        self.settings.set_value(Key.MAX_NEW_TOKENS, self.max_tokens.value())
        self.settings.set_value(Key.DEFAULT_REASONING, self.default_level.currentData())
        self.settings.set_value(Key.DEVELOPER_INSTRUCTIONS, self.instructions.toPlainText().strip())
        self.settings.sync()
        super().accept()
