"""Settings › Local server: on/off, who may connect, the port and key, the URL to copy, and the
requests in flight, live while the dialog is open."""

from __future__ import annotations

import secrets

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from gpt_oss_desktop.mlx_model import is_loopback

from .local_server import LocalServer
from .settings import Key, Settings

HOSTS = {"127.0.0.1": "This Mac only", "0.0.0.0": "Other devices on the network too (needs a key)"}
ABOUT = ("Other apps (Codex, editors, the openai SDKs) can use the loaded model through an OpenAI-compatible "
         "API: the Responses API and Chat Completions. They share the model, and its memory, with your chats.")


class LocalServerGroup(QGroupBox):
    def __init__(self, settings: Settings, server: LocalServer, parent: QWidget | None = None) -> None:
        super().__init__("Local server", parent)
        self.setObjectName("LocalServerSettings")
        self.settings = settings
        self.server = server
        self.enabled = QCheckBox("Serve the loaded model to other apps")
        self.enabled.setChecked(settings.value(Key.SERVER_ENABLED))
        self.host = QComboBox()
        for host, name in HOSTS.items():
            self.host.addItem(name, host)
        saved_host = settings.value(Key.SERVER_HOST)
        if self.host.findData(saved_host) < 0:
            self.host.addItem(saved_host, saved_host)
        self.host.setCurrentIndex(self.host.findData(saved_host))
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(settings.value(Key.SERVER_PORT))
        self.key = QLineEdit(settings.value(Key.SERVER_API_KEY))
        self.key.setPlaceholderText("none: any app on this Mac may connect")
        generate = QPushButton("Generate")
        generate.clicked.connect(lambda: self.key.setText(secrets.token_urlsafe(24)))
        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(generate)
        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.url.setObjectName("LocalServerUrl")
        self.copy = QPushButton("Copy")
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.url.text()))
        url_row = QHBoxLayout()
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy)
        self.status = QLabel()
        self.status.setObjectName("LocalServerStatus")
        self.status.setWordWrap(True)
        about = QLabel(ABOUT)
        about.setObjectName("SettingsNote")
        about.setWordWrap(True)

        form = QFormLayout(self)
        form.addRow(self.enabled)
        form.addRow("Who may connect:", self.host)
        form.addRow("Port:", self.port)
        form.addRow("API key:", key_row)
        form.addRow("URL:", url_row)
        form.addRow("Status:", self.status)
        form.addRow(about)
        server.changed.connect(self._show_state)
        server.in_flight_changed.connect(self._show_state)
        for edited in (self.host.currentIndexChanged, self.port.valueChanged):
            edited.connect(self._show_state)
        self._show_state()

    def _host(self) -> str:
        return str(self.host.currentData())

    def _show_state(self) -> None:
        server = self.server
        shown_host = "127.0.0.1" if is_loopback(self._host()) or self._host() == "0.0.0.0" else self._host()
        self.url.setText(server.url or f"http://{shown_host}:{self.port.value()}/v1")
        self.copy.setEnabled(bool(self.url.text()))
        if server.running:
            count = server.in_flight
            self.status.setText(f"Running · {count} request{'s' if count != 1 else ''} in flight")
        elif server.error:
            self.status.setText(f"Off: {server.error}")
        else:
            self.status.setText("Off")

    def problem(self) -> str | None:
        """Why the fields cannot be saved, or None."""
        if self.enabled.isChecked() and not is_loopback(self._host()) and not self.key.text().strip():
            return "Other devices may connect only with an API key: generate one, or choose This Mac only."
        return None

    def save(self) -> None:
        """Store the fields and start, restart or stop the server to match."""
        settings = self.settings
        settings.set_value(Key.SERVER_ENABLED, self.enabled.isChecked())
        settings.set_value(Key.SERVER_HOST, self._host())
        settings.set_value(Key.SERVER_PORT, self.port.value())
        settings.set_value(Key.SERVER_API_KEY, self.key.text().strip())
        self.server.apply()
