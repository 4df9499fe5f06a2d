"""The main window: sidebar, chat and reasoning dock, the toolbar with the reasoning level, the
status bar, and a native menu bar with the roles macOS expects.

The window only shows things and asks the session to act; the session does the work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.mlx_model import (
    REASONING_LEVELS,
    LoadOptions,
    LoadPlan,
    NotDownloadedError,
    memory_summary,
    total_memory_bytes,
)

from . import theme
from .approval_dialog import ApprovalDialog
from .chat_view import REASONING_LEVEL_NAMES, ChatView
from .local_server import LocalServer
from .model_dialog import ModelDialog
from .reasoning_panel import ReasoningPanel
from .reasoning_toggle import ReasoningToggle
from .session import ChatSession
from .settings import APPLICATION_DISPLAY_NAME, Key, Settings
from .settings_dialog import SettingsDialog
from .sidebar import ConversationSidebar
from .status_bar import StatusBar
from .store import DEFAULT_TITLE
from .text_keys import TextKeysFirst
from .tools_menu import ToolsButton

MINIMUM_SIZE = QSize(640, 440)
"""Below this the composer and a readable column no longer fit beside the sidebar."""
NARROW_WIDTH = 820
"""Narrower than this, the sidebar steps aside (View › Show Sidebar brings it back)."""
CACHE_NOTE_MS = 15_000
"""How long the status bar says a chat's saved prompt cache was refused."""
ABOUT_TEXT = (
    "<h3>gpt-oss</h3><p>OpenAI's open-weight gpt-oss models, running locally on Apple silicon with MLX.</p>"
    "<p>Your chats never leave this Mac.</p>"
)


def standard_shortcut(key: QKeySequence.StandardKey, fallback: str) -> list[QKeySequence]:
    """The platform's shortcut for a standard action, or `fallback` where it has none (Linux has
    no standard Preferences or Quit key; macOS gives ⌘, and ⌘Q)."""
    bindings = QKeySequence.keyBindings(key)
    return bindings or [QKeySequence(fallback)]


class Banner(QFrame):
    """A dismissable line above the chat for problems that must not interrupt typing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        self.label = QLabel()
        self.label.setObjectName("BannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("Dismiss")
        close.setObjectName("BannerDismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 8, 10, 8)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def clear_message(self, text: str) -> None:
        """`text` is no longer true: hide it if it is what the banner shows."""
        if self.label.text() == text:
            self.hide()


class MainWindow(QMainWindow):
    def __init__(self, session: ChatSession, settings: Settings, models_dir: Path,
                 local_server: LocalServer | None = None) -> None:
        super().__init__()
        self.session = session
        self.model = session.model
        self.settings = settings
        self.models_dir = models_dir
        self.local_server = local_server
        self.setObjectName("MainWindow")
        self.setWindowIcon(theme.app_icon())
        self.setUnifiedTitleAndToolBarOnMac(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks)
        self.setMinimumSize(MINIMUM_SIZE)
        self._sidebar_stepped_aside = False
        self._model_error: str | None = None  # the banner's model problem, cleared by a load
        QApplication.instance().installEventFilter(TextKeysFirst(self))

        self.sidebar = ConversationSidebar()
        self.chat = ChatView()
        self.banner = Banner()
        self.panel = ReasoningPanel(self)
        self.toggle = ReasoningToggle()
        self.approval: ApprovalDialog | None = None  # the call waiting for the user's consent
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.status.show_model(None)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)

        chat_column = QWidget()
        chat_column.setObjectName("ChatColumn")
        column = QVBoxLayout(chat_column)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.chat, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.setHandleWidth(1)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(chat_column)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.sidebar.setMinimumWidth(180)
        chat_column.setMinimumWidth(380)
        self.splitter.setSizes([250, 800])
        self.setCentralWidget(self.splitter)

        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._connect()
        self._restore_geometry()
        self.refresh_sidebar()
        self._apply_theme(theme.palette())
        theme.watcher().changed.connect(self._apply_theme)

    def _apply_theme(self, colours: theme.Palette) -> None:
        """Icons are drawn in the palette's colours, so they are redrawn when it changes; so is
        the reasoning panel (a reply being streamed keeps its colours until it ends)."""
        for action in self.findChildren(QAction):
            if name := action.property("icon_name"):
                action.setIcon(theme.icon(name, colours.text))
        if not self.session.busy:
            self.panel.show_turns(self.session.turns())

    # -- construction --------------------------------------------------------------------------

    def _action(self, text: str, slot: Callable, shortcuts: list[QKeySequence] | None = None,
                role: QAction.MenuRole = QAction.MenuRole.NoRole, icon: str | None = None) -> QAction:
        """An action with an explicit menu role: NoRole unless it belongs in the app menu, so Qt's
        text heuristics never move e.g. "About…" items on their own."""
        action = QAction(text, self)
        action.setMenuRole(role)
        if shortcuts:
            action.setShortcuts(shortcuts)
        if icon:
            action.setProperty("icon_name", icon)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        standard = QKeySequence.StandardKey
        self.new_action = self._action("New Chat", self.session.new_conversation, QKeySequence.keyBindings(standard.New),
                                       icon="compose")
        self.choose_model_action = self._action("Choose Model…", lambda: self.show_model_dialog(first_run=False),
                                                [QKeySequence("Ctrl+Shift+O")], icon="chip")
        self.open_folder_action = self._action("Open Model Folder…", self.open_model_folder,
                                               QKeySequence.keyBindings(standard.Open), icon="folder")
        self.export_markdown_action = self._action("Export Chat as Markdown…", lambda: self.export_current("markdown"),
                                                   [QKeySequence("Ctrl+Shift+E")])
        self.export_json_action = self._action("Export Chat as JSON…", lambda: self.export_current("json"))
        self.close_action = self._action("Close Window", self.close, QKeySequence.keyBindings(standard.Close))
        self.quit_action = self._action("Quit gpt-oss", QApplication.quit, standard_shortcut(standard.Quit, "Ctrl+Q"),
                                        QAction.MenuRole.QuitRole)
        self.settings_action = self._action("Settings…", self.show_settings,
                                            standard_shortcut(standard.Preferences, "Ctrl+,"),
                                            QAction.MenuRole.PreferencesRole)
        self.about_action = self._action("About gpt-oss", self.show_about, role=QAction.MenuRole.AboutRole)
        self.about_qt_action = self._action("About Qt", QApplication.aboutQt, role=QAction.MenuRole.AboutQtRole)
        self.find_action = self._action("Search Chats", self.sidebar.focus_search, QKeySequence.keyBindings(standard.Find))
        self.stop_action = self._action("Stop Reply", self.session.stop,
                                        [QKeySequence("Ctrl+."), QKeySequence(Qt.Key.Key_Escape)], icon="stop")
        self.regenerate_action = self._action("Regenerate Reply", self.session.regenerate, [QKeySequence("Ctrl+R")],
                                              icon="regenerate")
        self.rename_action = self._action("Rename Chat", self.rename_current)
        self.delete_action = self._action("Delete Chat…", self.delete_current, [QKeySequence("Ctrl+Backspace")])
        # ⌘⌫ deletes the chat only from the chat list: in a text field it deletes text.
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.sidebar.list.addAction(self.delete_action)
        self.level_group = QActionGroup(self)
        self.reasoning_level_actions: dict[str, QAction] = {}
        for number, reasoning_level in enumerate(REASONING_LEVELS, start=1):
            action = self._action(f"{REASONING_LEVEL_NAMES[reasoning_level]} Reasoning",
                                  lambda _=False, chosen=reasoning_level: self.session.set_reasoning_level(chosen),
                                  [QKeySequence(f"Ctrl+{number}")])
            action.setCheckable(True)
            self.level_group.addAction(action)
            self.reasoning_level_actions[reasoning_level] = action
        self.sidebar_action = self._action("Show Sidebar", self._show_sidebar,
                                           [QKeySequence("Ctrl+Alt+S")], icon="sidebar")
        self.sidebar_action.setCheckable(True)
        self.sidebar_action.setChecked(True)
        self.panel_action = self.panel.toggleViewAction()
        self.panel_action.setText("Show Reasoning Panel")
        self.panel_action.setShortcut(QKeySequence("Ctrl+Alt+R"))
        self.panel_action.setProperty("icon_name", "reasoning")
        self.panel_action.setMenuRole(QAction.MenuRole.NoRole)
        self.minimize_action = self._action("Minimize", self.showMinimized, [QKeySequence("Ctrl+M")])
        self.zoom_action = self._action("Zoom", lambda: self.showNormal() if self.isMaximized() else self.showMaximized())
        self.stop_action.setEnabled(False)
        for action in (self.stop_action, self.regenerate_action):
            self.addAction(action)  # their shortcuts work wherever the focus is

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Toolbar")
        toolbar.setObjectName("MainToolbar")
        toolbar.setMovable(False)
        toolbar.setFloatable(False)
        toolbar.setIconSize(QSize(18, 18))
        toolbar.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)
        toolbar.addAction(self.sidebar_action)
        toolbar.addAction(self.new_action)
        toolbar.addSeparator()
        self.title = QLabel(DEFAULT_TITLE)
        self.title.setObjectName("ChatTitle")
        self.title.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.title.setAlignment(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
        toolbar.addWidget(self.title)
        toolbar.addWidget(self.toggle)
        self.tools_button = ToolsButton(self.settings)
        toolbar.addWidget(self.tools_button)
        toolbar.addSeparator()
        toolbar.addAction(self.panel_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("File")
        file_menu.addActions([self.new_action, self.choose_model_action, self.open_folder_action])
        file_menu.addSeparator()
        file_menu.addActions([self.export_markdown_action, self.export_json_action])
        file_menu.addSeparator()
        file_menu.addActions([self.close_action, self.quit_action])

        edit_menu = bar.addMenu("Edit")
        standard = QKeySequence.StandardKey
        edit_menu.addAction(self._focus_action("Undo", standard.Undo, "undo"))
        edit_menu.addAction(self._focus_action("Redo", standard.Redo, "redo"))
        edit_menu.addSeparator()
        for text, key, method in (("Cut", standard.Cut, "cut"), ("Copy", standard.Copy, "copy"),
                                  ("Paste", standard.Paste, "paste"), ("Select All", standard.SelectAll, "selectAll")):
            edit_menu.addAction(self._focus_action(text, key, method))
        edit_menu.addSeparator()
        edit_menu.addAction(self.find_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.settings_action)

        chat_menu = bar.addMenu("Chat")
        chat_menu.addActions([self.stop_action, self.regenerate_action])
        chat_menu.addSeparator()
        chat_menu.addActions(list(self.reasoning_level_actions.values()))
        chat_menu.addSeparator()
        chat_menu.addActions([self.rename_action, self.delete_action])

        view_menu = bar.addMenu("View")
        view_menu.addActions([self.sidebar_action, self.panel_action])
        window_menu = bar.addMenu("Window")
        window_menu.addActions([self.minimize_action, self.zoom_action])
        help_menu = bar.addMenu("Help")
        help_menu.addActions([self.about_action, self.about_qt_action])

    def _focus_action(self, text: str, key: QKeySequence.StandardKey, method: str) -> QAction:
        """Edit-menu commands, sent to whichever text widget has the focus."""

        def send() -> None:
            target = QApplication.focusWidget()
            if target is not None and hasattr(target, method):
                getattr(target, method)()

        action = self._action(text, send, QKeySequence.keyBindings(key))
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # the widgets handle the keys themselves
        return action

    def _connect(self) -> None:
        session, chat, panel = self.session, self.chat, self.panel
        chat.send_requested.connect(session.send)
        chat.edit_submitted.connect(session.edit_and_resend)
        chat.stop_requested.connect(session.stop)
        chat.regenerate_requested.connect(session.regenerate)
        chat.reasoning_requested.connect(panel.reveal)
        chat.copied.connect(lambda _text: self.status.showMessage("Copied to the clipboard", 2000))
        self.sidebar.conversation_selected.connect(session.open_conversation)
        self.sidebar.new_requested.connect(session.new_conversation)
        self.sidebar.rename_requested.connect(session.rename)
        self.sidebar.delete_requested.connect(self.confirm_delete)
        self.sidebar.export_requested.connect(self.export)
        self.sidebar.search_changed.connect(lambda _text: self.refresh_sidebar())
        self.sidebar.chat_entered.connect(self.chat.composer.input.setFocus)
        self.toggle.reasoning_level_changed.connect(session.set_reasoning_level)

        session.conversations_changed.connect(self.refresh_sidebar)
        session.conversation_opened.connect(self._show_conversation)
        session.reasoning_level_changed.connect(self._show_reasoning_level)
        session.user_turn_added.connect(chat.add_user_turn)
        session.user_turn_added.connect(lambda _turn: chat.composer.message_stored())
        session.turns_truncated.connect(self._truncate)
        session.reply_started.connect(self._begin_reply)
        session.reply_text.connect(chat.show_reply_text)
        session.reasoning_started.connect(panel.start_reasoning_block)
        session.reasoning_text.connect(panel.append_reasoning)
        session.thinking.connect(chat.show_reply_thinking)
        session.thinking.connect(panel.set_thinking)
        session.thought.connect(panel.set_thought)
        session.tool_called.connect(panel.add_tool_call)
        session.tool_answered.connect(panel.add_tool_result)
        session.note.connect(panel.add_note)
        session.approval_requested.connect(self.ask_approval)
        session.approval_settled.connect(self._close_approval)
        session.chat_tools_changed.connect(self.tools_button.show_tools)
        self.tools_button.changed.connect(session.set_chat_tools)
        self.tools_button.settings_requested.connect(self.show_settings)
        session.reply_finished.connect(self._finish_reply)
        session.busy_changed.connect(self._show_busy)
        session.stats.connect(self.status.show_stats)
        session.error.connect(self.banner.show_message)
        session.error_resolved.connect(self.banner.clear_message)
        session.turns_saved.connect(self._show_saved)
        session.cache_note.connect(lambda text: self.status.showMessage(text, CACHE_NOTE_MS))
        chat.version_chosen.connect(session.show_version)
        model = self.model
        model.context_measured.connect(self.status.show_context)
        model.memory_measured.connect(self.status.show_memory)
        model.paging_measured.connect(self.status.show_paging)
        model.model_loading.connect(self.status.show_loading)
        model.model_loaded.connect(self._model_loaded)
        model.model_failed.connect(self._model_failed)

    # -- session → view ------------------------------------------------------------------------

    def refresh_sidebar(self) -> None:
        """The chat list (or the search results) and the title, after any change to the chats."""
        selected = self.session.current.id if self.session.current else None
        if self.sidebar.searching():
            limit = self.sidebar.search_limit
            hits = self.session.search(self.sidebar.search.text(), limit=limit + 1)
            self.sidebar.show_search_results(hits[:limit], selected, more=len(hits) > limit)
        else:
            self.sidebar.show_conversations(self.session.conversations(), selected)
        self._show_title()

    def _show_title(self) -> None:
        title = self.session.current.title if self.session.current else DEFAULT_TITLE
        self.title.setText(title)
        self.setWindowTitle(title)

    def _show_conversation(self, record, turns) -> None:
        self.chat.show_turns(turns)
        self.panel.show_turns(turns)
        self._show_title()
        self.sidebar.select(record.id if record else None)
        self.status.clear_reply_figures()
        if not self.sidebar.list.hasFocus():  # arrowing through the list keeps the keyboard there
            self.chat.composer.input.setFocus()

    def _show_reasoning_level(self, reasoning_level: str) -> None:
        self.toggle.set_reasoning_level(reasoning_level)
        self.reasoning_level_actions[reasoning_level].setChecked(True)
        self.chat.composer.set_next_reasoning_level(reasoning_level)

    def _truncate(self, index: int) -> None:
        self.chat.remove_turns_from(index)
        self.panel.show_turns(self.session.turns())

    def _begin_reply(self, reasoning_level: str) -> None:
        self.chat.begin_reply(reasoning_level)
        self.panel.begin_reply(reasoning_level)
        self.status.clear_reply_figures()

    def _finish_reply(self, turn) -> None:
        self.chat.finish_reply(turn)
        self.panel.show_turns(self.session.turns())
        self.panel.set_thought(turn.thought_seconds if turn else None)
        self._show_title()

    def _show_saved(self, turns) -> None:
        """A reply kept in memory is written now: its bubble no longer says it is not saved."""
        for bubble, turn in zip(self.chat.bubbles, turns, strict=False):
            if bubble.role == "assistant" and turn.role == "assistant":
                bubble.set_status(turn.status, turn.detail)

    def _show_busy(self, busy: bool) -> None:
        self.chat.set_busy(busy)
        self.stop_action.setEnabled(busy)
        self.regenerate_action.setEnabled(not busy)

    def _model_loaded(self, name: str) -> None:
        self.status.show_model(name, memory_summary(self.model.load_options), self.model.kernel_warning)
        self.chat.composer.input.setPlaceholderText(f"Message {name}")
        if self._model_error:  # the model problem shown before is over
            self.banner.clear_message(self._model_error)
            self._model_error = None

    def _model_failed(self, message: str) -> None:
        """A model could not be opened. When that failed before the old model was let go (the
        folder did not pass its checks), the old one is still loaded and answering: the status
        bar keeps saying so."""
        model = self.model
        if model.model_ready and model.model_name:
            self.status.show_model(model.model_name, memory_summary(model.load_options), model.kernel_warning)
        else:
            self.status.show_model(None)
            self.status.show_context(None, None)
            self.status.show_memory(None)
        self._model_error = message
        self.banner.show_message(message)

    # -- commands ------------------------------------------------------------------------------

    def take_launch(self, request: dict) -> None:
        """A later launch on this data folder: come to the front and do what it asked (open a
        model, unless a reply is being written)."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
        model = request.get("model")
        if isinstance(model, str) and model:
            if self.session.busy:
                self.banner.show_message(f"Finish or stop this reply first: then open {model} again.")
            else:
                self.open_model(model)

    def open_model(self, path_or_id: str) -> None:
        try:
            self.model.open_model(path_or_id, self.confirm_fit)
        except NotDownloadedError as missing:
            self.show_model_dialog(first_run=False, preselect=missing.repo_id)

    def confirm_fit(self, verdict: LoadPlan) -> bool:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Memory")
        box.setText("This model may not fit in memory." if verdict.runs else "This model will not fit in memory.")
        box.setInformativeText(verdict.message)
        load = box.addButton("Load Anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is load

    def ask_approval(self, request) -> None:
        """Show the call that waits for consent; the answer goes to the session."""
        self._close_approval()
        self.approval = ApprovalDialog(request, self)
        self.approval.answered.connect(self.session.answer_approval)
        self.approval.open()

    def _close_approval(self) -> None:
        dialog, self.approval = self.approval, None
        if dialog is not None and dialog.isVisible():
            dialog.answered.disconnect()
            dialog.close()

    def show_model_dialog(self, *, first_run: bool, preselect: str | None = None) -> None:
        dialog = ModelDialog(self.models_dir, total_memory_bytes(), context_length=self.settings.context_length(),
                             manual=self.settings.load_options(), first_run=first_run, preselect=preselect,
                             parent=self)
        if dialog.exec() and dialog.chosen:
            self.open_model(dialog.chosen)

    def open_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a Model Folder")
        if folder:
            self.open_model(folder)

    def show_settings(self) -> None:
        """A new model, context length or memory setting reloads the model (unless a reply runs)."""

        def load_settings() -> tuple[str, int, LoadOptions | None]:
            settings = self.settings
            return settings.value(Key.MODEL), settings.value(Key.CONTEXT_LENGTH), settings.load_options()

        before = load_settings()
        if SettingsDialog(self.settings, self.models_dir, self, self.local_server).exec():
            self.session.apply_cache_budget()
            after = load_settings()
            if after[0] and after != before and not self.session.busy:
                self.open_model(after[0])

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APPLICATION_DISPLAY_NAME}", ABOUT_TEXT)

    def export_current(self, kind: str) -> None:
        if self.session.current is None:
            self.banner.show_message("There is nothing to export yet: this chat has no messages.")
            return
        self.export(self.session.current.id, kind)

    def export(self, conversation_id: int, kind: str) -> None:
        record = self.session.store.conversation(conversation_id)
        suffix, name = (".md", "Markdown") if kind == "markdown" else (".json", "JSON")
        safe_title = "".join(c if c.isalnum() or c in " -_" else "_" for c in record.title).strip() or "chat"
        path, _filter = QFileDialog.getSaveFileName(
            self, f"Export Chat as {name}", str(Path.home() / f"{safe_title}{suffix}"), f"{name} (*{suffix})"
        )
        if path and self.session.export(conversation_id, kind, Path(path)):
            self.status.showMessage(f"Exported to {path}", 4000)

    def rename_current(self) -> None:
        if self.session.current is not None:
            self.sidebar.rename(self.session.current.id)

    def delete_current(self) -> None:
        if self.session.current is not None:
            self.confirm_delete(self.session.current.id)

    def confirm_delete(self, conversation_id: int) -> None:
        title = self.session.store.conversation(conversation_id).title
        answer = QMessageBox.question(
            self, "Delete Chat", f"Delete “{title}”? This cannot be undone.",
            QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.session.delete(conversation_id)

    # -- geometry ------------------------------------------------------------------------------

    def _show_sidebar(self, shown: bool) -> None:
        self._sidebar_stepped_aside = False  # the user's choice from now on
        self.sidebar.setVisible(shown)

    def resizeEvent(self, event) -> None:
        """A narrow window gives the chat the room: a shown sidebar steps aside while the window
        is narrow and comes back when it widens (unless the user chose otherwise meanwhile)."""
        super().resizeEvent(event)
        narrow = event.size().width() < NARROW_WIDTH
        if narrow and self.sidebar_action.isChecked():
            self.sidebar_action.setChecked(False)
            self.sidebar.hide()
            self._sidebar_stepped_aside = True
        elif not narrow and self._sidebar_stepped_aside:
            self.sidebar_action.setChecked(True)
            self._show_sidebar(True)

    def _restore_geometry(self) -> None:
        geometry = self.settings.value(Key.WINDOW_GEOMETRY)
        if not (geometry and self.restoreGeometry(QByteArray(geometry))):
            self.resize(1180, 760)
        state = self.settings.value(Key.WINDOW_STATE)
        if state:
            self.restoreState(QByteArray(state))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.session.stop()
        self.settings.set_value(Key.WINDOW_GEOMETRY, bytes(self.saveGeometry().data()))
        self.settings.set_value(Key.WINDOW_STATE, bytes(self.saveState().data()))
        self.settings.sync()
        super().closeEvent(event)
