"""The app's local server (Settings › Local server): the OpenAI-compatible API on the model the
app has loaded, so other apps on this Mac (Codex, editors, scripts) use it too.

The server shares the one engine and its memory with the chat: each request's work is queued on
the engine worker's thread behind what is already queued there, so a chat reply and a server
request take turns in the order they came. The HTTP side runs on a thread of its own and never
touches a widget; this controller lives on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from gpt_oss_desktop.mlx_model import ServerHandle, ServerSettings, data_dir, start_server

from .settings import Key, Settings
from .worker import EngineHost

log = logging.getLogger(__name__)

POLL_MS = 250
UNLOADED_MODEL_ID = "gpt-oss"  # what /v1/models lists before a model is loaded (requests get 503)


def store_path() -> Path:
    return data_dir() / "server" / "responses.sqlite3"


class LocalServer(QObject):
    changed = Signal()  # started, stopped, or failed to start
    in_flight_changed = Signal(int)

    def __init__(self, engine: EngineHost, settings: Settings, start_date: Callable[[], str] | None = None) -> None:
        """`start_date`: the date new server chats' system message carries (default: today)."""
        super().__init__()
        self.engine = engine
        self.settings = settings
        self._start_date = start_date
        self.handle: ServerHandle | None = None
        self.error = ""  # why the last start failed
        self._config: tuple[str, int, str] | None = None
        self._model_id = UNLOADED_MODEL_ID
        self._in_flight = 0
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._check_in_flight)
        engine.worker.loaded.connect(self._on_loaded)

    @property
    def running(self) -> bool:
        return self.handle is not None

    @property
    def url(self) -> str:
        return self.handle.url if self.handle else ""

    @property
    def in_flight(self) -> int:
        return self.handle.in_flight if self.handle else 0

    def apply(self) -> None:
        """Start, restart or stop the server as the settings now say."""
        settings = self.settings
        wanted = settings.value(Key.SERVER_ENABLED)
        config = (settings.value(Key.SERVER_HOST).strip() or Key.SERVER_HOST.default,
                  settings.value(Key.SERVER_PORT), settings.value(Key.SERVER_API_KEY).strip())
        if self.handle is not None and (not wanted or config != self._config):
            self.stop()
        if wanted and self.handle is None:
            self._start(config)

    def _start(self, config: tuple[str, int, str]) -> None:
        host, port, key = config
        settings = ServerSettings(model_id=self._model_id, api_key=key or None)
        if self._start_date is not None:
            settings.start_date = self._start_date
        try:
            self.handle = start_server(self.engine.run, lambda: self.engine.worker.engine, store_path=store_path(),
                                       settings=settings, host=host, port=port)
        except (ValueError, OSError) as error:
            self.error = str(error)
            log.warning("local server: %s", error)
        else:
            self.error = ""
            self._config = config
            self._poll.start()
        self.changed.emit()

    def stop(self) -> None:
        if self.handle is None:
            return
        handle, self.handle = self.handle, None
        self._poll.stop()
        handle.stop()
        self._check_in_flight()
        self.changed.emit()

    def _on_loaded(self, info) -> None:
        self._model_id = info.name
        if self.handle is not None:
            self.handle.settings.model_id = info.name

    def _check_in_flight(self) -> None:
        count = self.in_flight
        if count != self._in_flight:
            self._in_flight = count
            self.in_flight_changed.emit(count)
