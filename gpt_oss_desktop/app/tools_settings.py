"""Settings › Tools: the browser's library folders (with how much of them is indexed) and the web
switch, python's switch, consent and limits, and the MCP servers with their status and tools.

The widgets only show and collect; what is kept goes through `Settings` and `mcp_file`. Indexing
a library and starting MCP servers to list their tools take seconds, so they run on a background
thread and report back with a signal.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.mlx_model import McpConfigError, Toolbox, data_dir, sandbox_problem

from .mcp_file import read_servers, server_entry, write_servers
from .settings import MCP_CONFIG_NAME, Key, Settings

APPROVAL_NAMES = {"ask": "Ask before each call (python, MCP tools that may change things)",
                  "always": "Run without asking"}
WEB_NOTE = ("Off: the browser reads only your library and nothing leaves this Mac. On: the model may open web "
            "pages; a search service (a SearXNG address) lets it search the web too.")


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("SettingsNote")
    label.setWordWrap(True)
    return label


class _Background(QObject):
    """Runs a slow function on a thread; `done` brings its result (or the error) to the GUI."""

    done = Signal(object, object)  # result, error text or None

    def run(self, work: Callable[[], Any]) -> None:
        def target() -> None:
            try:
                outcome = (work(), None)
            except Exception as error:  # reported in the widget
                outcome = (None, f"{type(error).__name__}: {error}")
            try:
                self.done.emit(*outcome)
            except RuntimeError:  # the dialog was closed meanwhile
                pass

        threading.Thread(target=target, name="settings-tools", daemon=True).start()


def index_library(folders: list[str], index_path: Path) -> tuple[int, int, dict[str, str]]:
    """Bring the library's index up to date: (documents indexed, read anew, unreadable files)."""
    with Toolbox(library=folders, python=False, index_path=index_path) as box:
        library = box.browser.library
        changed = library.refresh()
        return library.indexed(), changed, {str(path): reason for path, reason in library.skipped.items()}


def probe_servers(config: Path) -> list[dict[str, Any]]:
    """Start every server in `config`, list its tools, stop it: what Settings shows."""
    with Toolbox(python=False, mcp_config=config) as box:
        return [{"name": status.name, "state": status.state,
                 "tools": [(tool.name, tool.description or "",
                            bool(tool.annotations and tool.annotations.read_only_hint)) for tool in status.tools]}
                for status in box.mcp.statuses()]


class ServerDialog(QDialog):
    """Add or edit one MCP server: a name, and a command line or a streamable HTTP URL."""

    def __init__(self, name: str = "", entry: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("McpServerDialog")
        self.setWindowTitle("MCP Server")
        entry = entry or {}
        self.previous = entry
        self.name = QLineEdit(name)
        command = [entry["command"], *entry.get("args", [])] if "command" in entry else []
        self.command = QLineEdit(shlex.join(command))
        self.command.setPlaceholderText("npx -y @modelcontextprotocol/server-filesystem ~/Documents")
        self.url = QLineEdit(entry.get("url", ""))
        self.url.setPlaceholderText("http://127.0.0.1:8000/mcp (instead of a command)")
        self.env = QPlainTextEdit("\n".join(f"{k}={v}" for k, v in entry.get("env", {}).items()))
        self.env.setPlaceholderText("NAME=value, one per line")
        self.env.setMaximumHeight(80)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("Command:", self.command)
        form.addRow("Or URL:", self.url)
        form.addRow("Environment:", self.env)
        self.error = _note("")
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.result_entry: dict[str, Any] | None = None

    def accept(self) -> None:
        try:
            if not self.name.text().strip():
                raise McpConfigError("the server needs a name")
            env = {}
            for line in self.env.toPlainText().splitlines():
                if line.strip():
                    key, equals, value = line.partition("=")
                    if not equals or not key.strip():
                        raise McpConfigError(f"the environment line {line!r} is not NAME=value")
                    env[key.strip()] = value
            self.result_entry = server_entry(shlex.split(self.command.text()), self.url.text(), env, self.previous)
        except (McpConfigError, ValueError) as error:
            self.error.setText(f"Cannot save this server: {error}")
            self.error.show()
            return
        super().accept()


class ToolsSettings(QGroupBox):
    """The Tools group of the Settings dialog; `save()` keeps what it shows."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("ToolsSettings")
        self.settings = settings
        self.mcp_path = data_dir() / MCP_CONFIG_NAME
        layout = QVBoxLayout(self)
        layout.addWidget(self._browser_group())
        layout.addWidget(self._python_group())
        layout.addWidget(self._mcp_group())

    # -- browser -------------------------------------------------------------------------------

    def _browser_group(self) -> QGroupBox:
        self.folders = QListWidget()
        self.folders.setObjectName("LibraryFolders")
        self.folders.setMaximumHeight(90)
        self.folders.addItems(self.settings.library_folders())
        add, remove, reindex = QPushButton("Add Folder…"), QPushButton("Remove"), QPushButton("Index Now")
        add.clicked.connect(self._choose_library_folder)
        remove.clicked.connect(self._remove_library_folder)
        reindex.clicked.connect(self.reindex)
        row = QHBoxLayout()
        for button in (add, remove, reindex):
            row.addWidget(button)
        row.addStretch(1)
        self.index_status = _note("Markdown, text, HTML, PDF and source files in these folders are searched offline.")
        self.index_status.setObjectName("LibraryStatus")
        self.web = QCheckBox("Let the browser open web pages")
        self.web.setChecked(self.settings.value(Key.WEB))
        self.search_url = QLineEdit(self.settings.value(Key.WEB_SEARCH_URL))
        self.search_url.setPlaceholderText("Web search service (SearXNG), e.g. http://127.0.0.1:8888")
        self.search_url.setEnabled(self.web.isChecked())
        self.web.toggled.connect(self.search_url.setEnabled)
        group = QGroupBox("Browser")
        column = QVBoxLayout(group)
        column.addWidget(QLabel("Library folders:"))
        column.addWidget(self.folders)
        column.addLayout(row)
        column.addWidget(self.index_status)
        column.addWidget(self.web)
        column.addWidget(self.search_url)
        column.addWidget(_note(WEB_NOTE))
        self._indexer = _Background(self)
        self._indexer.done.connect(self._show_index)
        return group

    def library_folders(self) -> list[str]:
        return [self.folders.item(i).text() for i in range(self.folders.count())]

    def add_library_folder(self, folder: str) -> None:
        if folder and folder not in self.library_folders():
            self.folders.addItem(folder)
            self.reindex()

    def _choose_library_folder(self) -> None:
        self.add_library_folder(QFileDialog.getExistingDirectory(self, "Add a Library Folder"))

    def _remove_library_folder(self) -> None:
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))

    def reindex(self) -> None:
        folders = [folder for folder in self.library_folders() if Path(folder).is_dir()]
        missing = [folder for folder in self.library_folders() if folder not in folders]
        if not folders:
            self.index_status.setText("Missing: " + ", ".join(missing) if missing else "No library folder yet.")
            return
        self.index_status.setText("Indexing…")
        self._missing = missing
        self._indexer.run(lambda: index_library(folders, data_dir() / "library-index.sqlite3"))

    def _show_index(self, result: tuple[int, int, dict[str, str]] | None, error: str | None) -> None:
        if error is not None:
            self.index_status.setText(f"Could not index the library: {error}")
            return
        indexed, changed, skipped = result
        parts = [f"{indexed} documents indexed ({changed} read now)."]
        if skipped:
            parts.append(f"{len(skipped)} could not be read, e.g. {next(iter(skipped))}: {next(iter(skipped.values()))}")
        if self._missing:
            parts.append("Missing: " + ", ".join(self._missing))
        self.index_status.setText(" ".join(parts))

    # -- python --------------------------------------------------------------------------------

    def _python_group(self) -> QGroupBox:
        self.python = QCheckBox("Let the model run Python (sandboxed, one kernel per chat)")
        self.python.setChecked(self.settings.value(Key.PYTHON))
        self.approval = QComboBox()
        for policy, name in APPROVAL_NAMES.items():
            self.approval.addItem(name, policy)
        self.approval.setCurrentIndex(self.approval.findData(self.settings.approval()))
        self.memory = QSpinBox()
        self.memory.setRange(256, 65536)
        self.memory.setSingleStep(256)
        self.memory.setSuffix(" MiB")
        self.memory.setValue(self.settings.value(Key.PYTHON_MEMORY_MIB))
        self.cpu = QSpinBox()
        self.cpu.setRange(10, 86400)
        self.cpu.setSuffix(" s of CPU per kernel")
        self.cpu.setValue(self.settings.value(Key.PYTHON_CPU_SECONDS))
        self.timeout = QSpinBox()
        self.timeout.setRange(5, 3600)
        self.timeout.setSuffix(" s per call")
        self.timeout.setValue(self.settings.value(Key.PYTHON_TIMEOUT_SECONDS))
        form = QFormLayout()
        form.addRow(self.python)
        form.addRow("Consent:", self.approval)
        form.addRow("Memory:", self.memory)
        form.addRow("CPU time:", self.cpu)
        form.addRow("Time limit:", self.timeout)
        problem = sandbox_problem()
        self.sandbox_status = _note(problem or "Code runs with no network and writes only in the chat's own folder.")
        self.sandbox_status.setObjectName("SandboxStatus")
        form.addRow(self.sandbox_status)
        group = QGroupBox("Python")
        group.setLayout(form)
        return group

    # -- MCP servers ---------------------------------------------------------------------------

    def _mcp_group(self) -> QGroupBox:
        self.servers = QTreeWidget()
        self.servers.setObjectName("McpServers")
        self.servers.setHeaderLabels(["Server or tool", "Status"])
        self.servers.setMinimumHeight(120)
        buttons = QHBoxLayout()
        for text, action in (("Add…", self.add_server), ("Edit…", self._edit_selected),
                             ("Remove", self._remove_selected), ("Import mcp.json…", self._choose_import),
                             ("Check", self.check_servers)):
            button = QPushButton(text)
            button.clicked.connect(action)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.mcp_status = _note(f"Servers are kept in {self.mcp_path} (the mcpServers format). "
                                "Untick a server or a tool to keep it from the model.")
        self.mcp_status.setObjectName("McpStatus")
        group = QGroupBox("MCP servers")
        column = QVBoxLayout(group)
        column.addWidget(self.servers)
        column.addLayout(buttons)
        column.addWidget(self.mcp_status)
        self._prober = _Background(self)
        self._prober.done.connect(self._show_probe)
        self._disabled = self.settings.mcp_disabled()
        try:
            self._entries = read_servers(self.mcp_path)
        except McpConfigError as error:
            self._entries = {}
            self.mcp_status.setText(f"The servers file cannot be used: {error}")
        self._show_servers({})
        return group

    def _show_servers(self, probed: dict[str, dict[str, Any]]) -> None:
        self.servers.clear()
        for name in self._entries:
            off = self._disabled.get(name, [])
            item = QTreeWidgetItem([name, probed.get(name, {}).get("state", "not checked")])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Unchecked if off is None else Qt.CheckState.Checked)
            for tool, description, read_only in probed.get(name, {}).get("tools", []):
                child = QTreeWidgetItem([tool, "read-only" if read_only else "asks first"])
                child.setToolTip(0, description)
                child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                child.setCheckState(0, Qt.CheckState.Unchecked if off is None or tool in off else Qt.CheckState.Checked)
                item.addChild(child)
            self.servers.addTopLevelItem(item)
            item.setExpanded(True)
        self.servers.resizeColumnToContents(0)

    def _collect_disabled(self) -> dict[str, list[str] | None]:
        """Server → tools ticked off (None: the server is off); servers not checked keep theirs."""
        disabled: dict[str, list[str] | None] = {}
        for i in range(self.servers.topLevelItemCount()):
            item = self.servers.topLevelItem(i)
            name = item.text(0)
            if item.checkState(0) == Qt.CheckState.Unchecked:
                disabled[name] = None
            elif item.childCount():
                disabled[name] = [item.child(j).text(0) for j in range(item.childCount())
                                  if item.child(j).checkState(0) == Qt.CheckState.Unchecked]
            else:
                disabled[name] = list(self._disabled.get(name) or [])
        return disabled

    def _selected_server(self) -> str | None:
        item = self.servers.currentItem()
        while item is not None and item.parent() is not None:
            item = item.parent()
        return item.text(0) if item is not None else None

    def add_server(self, name: str = "", entry: dict[str, Any] | None = None) -> None:
        dialog = ServerDialog(name, entry, self)
        if dialog.exec() and dialog.result_entry is not None:
            self.set_server(dialog.name.text().strip(), dialog.result_entry, replacing=name or None)

    def set_server(self, name: str, entry: dict[str, Any], replacing: str | None = None) -> None:
        entries = {k: v for k, v in self._entries.items() if k != replacing}
        entries[name] = entry
        self._save_entries(entries)

    def _edit_selected(self) -> None:
        name = self._selected_server()
        if name is not None:
            self.add_server(name, self._entries[name])

    def _remove_selected(self) -> None:
        name = self._selected_server()
        if name is not None:
            self._save_entries({k: v for k, v in self._entries.items() if k != name})

    def _choose_import(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Import MCP Servers", str(Path.home()), "JSON (*.json)")
        if path:
            self.import_servers(Path(path))

    def import_servers(self, path: Path) -> None:
        try:
            imported = read_servers(path)
        except McpConfigError as error:
            QMessageBox.warning(self, "Import MCP Servers", str(error))
            return
        self._save_entries({**self._entries, **imported})

    def _save_entries(self, entries: dict[str, dict[str, Any]]) -> None:
        self._disabled = self._collect_disabled()
        try:
            write_servers(self.mcp_path, entries)
        except (McpConfigError, OSError) as error:
            self.mcp_status.setText(f"Could not save the servers: {error}")
            return
        self._entries = entries
        self._show_servers({})
        self.check_servers()

    def check_servers(self) -> None:
        """Start each server once to show whether it runs and which tools it offers."""
        if not self._entries:
            return
        self.mcp_status.setText("Starting the servers to list their tools…")
        self._prober.run(lambda: probe_servers(self.mcp_path))

    def _show_probe(self, result: list[dict[str, Any]] | None, error: str | None) -> None:
        if error is not None:
            self.mcp_status.setText(f"Could not start the servers: {error}")
            return
        self._disabled = self._collect_disabled()
        self._show_servers({server["name"]: server for server in result})
        failed = [server["name"] for server in result if server["state"] != "running"]
        self.mcp_status.setText(f"Not running: {', '.join(failed)}." if failed
                                else f"{len(result)} server(s) running.")

    # -- keeping -------------------------------------------------------------------------------

    def save(self) -> None:
        settings = self.settings
        settings.set_library_folders(self.library_folders())
        settings.set_value(Key.WEB, self.web.isChecked())
        settings.set_value(Key.WEB_SEARCH_URL, self.search_url.text().strip())
        settings.set_value(Key.PYTHON, self.python.isChecked())
        settings.set_value(Key.APPROVAL, self.approval.currentData())
        settings.set_value(Key.PYTHON_MEMORY_MIB, self.memory.value())
        settings.set_value(Key.PYTHON_CPU_SECONDS, self.cpu.value())
        settings.set_value(Key.PYTHON_TIMEOUT_SECONDS, self.timeout.value())
        settings.set_mcp_disabled(self._collect_disabled())
