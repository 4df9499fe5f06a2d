"""Asking before a tool runs code or may change something: the code (or the arguments) as the
model wrote it, and the four answers (once, for this chat, always, no).

The dialog is window-modal but not blocking (`open`, not `exec`): the engine thread waits for the
answer, the GUI keeps painting the reply, and a reply stopped meanwhile closes the question.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from gpt_oss_desktop.mlx_model import ApprovalRequest

from .markdown_view import monospace_font

PYTHON_NOTE = ("It runs in a sandbox: no network, and it writes only in this chat's folder, within the memory "
               "and time limits of Settings › Tools.")
FUNCTION_NOTE = "Its server does not mark this tool as read-only: it may change something."


def _shown_code(request: ApprovalRequest) -> str:
    if request.recipient in ("python", "functions.python"):
        return request.arguments
    try:
        return json.dumps(json.loads(request.arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return request.arguments


class ApprovalDialog(QDialog):
    answered = Signal(str)  # one of session.APPROVAL_CHOICES

    def __init__(self, request: ApprovalRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ApprovalDialog")
        self.request = request
        python = request.recipient in ("python", "functions.python")
        tool = request.recipient.removeprefix("functions.")
        self.setWindowTitle("Run Python Code?" if python else f"Call {tool}?")
        question = QLabel("The model wants to run this Python code:" if python
                          else f"The model wants to call the tool {tool} with these arguments:")
        question.setWordWrap(True)
        self.code = QPlainTextEdit(_shown_code(request))
        self.code.setObjectName("ApprovalCode")
        self.code.setReadOnly(True)
        self.code.setFont(monospace_font())
        self.code.setMinimumSize(480, 160)
        note = QLabel(PYTHON_NOTE if python else FUNCTION_NOTE)
        note.setObjectName("SettingsNote")
        note.setWordWrap(True)

        self.buttons = QDialogButtonBox()
        self.choices: dict[str, QPushButton] = {}
        for choice, text, role in (
            ("deny", "Don't Run", QDialogButtonBox.ButtonRole.RejectRole),
            ("always", "Always Allow", QDialogButtonBox.ButtonRole.ActionRole),
            ("chat", "Allow in This Chat", QDialogButtonBox.ButtonRole.ActionRole),
            ("once", "Run Once" if python else "Allow Once", QDialogButtonBox.ButtonRole.AcceptRole),
        ):
            button = self.buttons.addButton(text, role)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, c=choice: self.choose(c))
            self.choices[choice] = button
        self.choices["always"].setToolTip("Stop asking in every chat (Settings › Tools › Ask before running)")
        self.choices["deny"].setDefault(True)  # Return does not run code by accident

        layout = QVBoxLayout(self)
        layout.addWidget(question)
        layout.addWidget(self.code, 1)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self._answered = False

    def choose(self, choice: str) -> None:
        if not self._answered:
            self._answered = True
            self.answered.emit(choice)
        self.done(QDialog.DialogCode.Rejected if choice == "deny" else QDialog.DialogCode.Accepted)

    def reject(self) -> None:  # Esc and the close button
        self.choose("deny")
