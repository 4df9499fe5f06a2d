"""The toolbar's Tools button: which tools this chat offers the model (kept with the chat), each
also needing its switch in Settings › Tools, which the menu's last item opens."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from .chat_tools import ChatTools
from .settings import Settings

TOOL_NAMES = {"browser": "Browser (your library, the web if on)", "python": "Python (sandboxed)",
              "mcp": "MCP servers"}


class ToolsButton(QToolButton):
    changed = Signal(object)  # the chat's new ChatTools
    settings_requested = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ToolsButton")
        self.setText("Tools")
        self.setToolTip("The tools this chat offers the model")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.settings = settings
        self.tools = ChatTools()
        menu = QMenu(self)
        self.actions_by_name: dict[str, QAction] = {}
        for name, text in TOOL_NAMES.items():
            action = menu.addAction(text)
            action.setCheckable(True)
            action.toggled.connect(lambda on, n=name: self._toggle(n, on))
            self.actions_by_name[name] = action
        menu.addSeparator()
        self.allowed_action = menu.addAction("Allowed to run without asking")
        self.allowed_action.setCheckable(True)
        self.allowed_action.toggled.connect(lambda on: self._toggle("allowed", on))
        menu.addSeparator()
        menu.addAction("Tool Settings…", self.settings_requested)
        menu.aboutToShow.connect(self._explain_unavailable)
        self.setMenu(menu)

    def show_tools(self, tools: ChatTools) -> None:
        self.tools = tools
        for name, action in self.actions_by_name.items():
            action.blockSignals(True)
            action.setChecked(getattr(tools, name))
            action.blockSignals(False)
        self.allowed_action.blockSignals(True)
        self.allowed_action.setChecked(tools.allowed)
        self.allowed_action.blockSignals(False)
        self._explain_unavailable()

    def _toggle(self, name: str, on: bool) -> None:
        self.tools = dataclasses.replace(self.tools, **{name: on})
        self.changed.emit(self.tools)

    def _explain_unavailable(self) -> None:
        """A tool Settings › Tools has off is greyed out here, saying why."""
        setup = self.settings.tool_setup()
        off = {"browser": None if setup.library or setup.web else "Add a library folder or turn on the web in "
                                                                    "Settings › Tools",
               "python": None if setup.python else "Python is off in Settings › Tools",
               "mcp": None}
        for name, reason in off.items():
            self.actions_by_name[name].setEnabled(reason is None)
            self.actions_by_name[name].setToolTip(reason or "")
        self.allowed_action.setVisible(self.settings.approval() == "ask")
