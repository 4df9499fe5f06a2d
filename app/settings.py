"""Preferences in QSettings under typed keys (the pattern of Buzz's settings module).

Each key carries its type and default, so a value read back from a plist or an INI file (where
numbers come back as strings) is always of the declared type, and a damaged value falls back to
the default instead of crashing the app. Chats are not preferences: they live in the store.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from PySide6.QtCore import QByteArray, QCoreApplication, QSettings

from mlx_model.paths import APPLICATION_NAME

APPLICATION_DISPLAY_NAME = "gpt-oss"
# macOS keeps the preferences in ~/Library/Preferences/local.gpt-oss.gpt-oss-desktop.plist. No
# organization *name* is set, so Qt's AppDataLocation is Application Support/gpt-oss-desktop (not
# Application Support/<organization>/gpt-oss-desktop): the folder mlx_model.paths.data_dir() gives.
ORGANIZATION_DOMAIN = "gpt-oss.local"

REASONING_LEVELS = ("low", "medium", "high")


class Key(Enum):
    MODEL = ("model/path_or_hub_id", str, "")
    CONTEXT_LENGTH = ("model/context_length", int, 0)  # 0: the engine picks what fits this Mac
    TEMPERATURE = ("sampling/temperature", float, 1.0)
    TOP_P = ("sampling/top_p", float, 1.0)
    MAX_NEW_TOKENS = ("sampling/max_new_tokens", int, 4096)
    DEVELOPER_INSTRUCTIONS = ("chat/developer_instructions", str, "")
    DEFAULT_REASONING = ("chat/default_reasoning", str, "medium")
    LAST_CONVERSATION = ("chat/last_conversation", int, 0)
    WINDOW_GEOMETRY = ("window/geometry", bytes, b"")
    WINDOW_STATE = ("window/state", bytes, b"")

    def __init__(self, path: str, kind: type, default: Any) -> None:
        self.path = path
        self.kind = kind
        self.default = default


def configure_application(app: QCoreApplication) -> None:
    """The identity QSettings derives its location from; call first."""
    app.setApplicationName(APPLICATION_NAME)
    app.setOrganizationDomain(ORGANIZATION_DOMAIN)
    if hasattr(app, "setApplicationDisplayName"):
        app.setApplicationDisplayName(APPLICATION_DISPLAY_NAME)


class Settings:
    def __init__(self, store: QSettings | None = None) -> None:
        self._store = store if store is not None else QSettings()

    def value(self, key: Key) -> Any:
        raw = self._store.value(key.path, None)
        if raw is None:
            return key.default
        try:
            if key.kind is bytes:
                return bytes(raw.data() if isinstance(raw, QByteArray) else raw)
            return key.kind(raw)
        except (TypeError, ValueError):
            return key.default

    def set_value(self, key: Key, value: Any) -> None:
        if key.kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, key.kind):
            raise TypeError(f"{key.name} takes {key.kind.__name__}, not {type(value).__name__}")
        self._store.setValue(key.path, QByteArray(value) if key.kind is bytes else value)

    def reset(self, key: Key) -> None:
        self._store.remove(key.path)

    def sync(self) -> None:
        self._store.sync()

    def default_reasoning(self) -> str:
        level = self.value(Key.DEFAULT_REASONING)
        return level if level in REASONING_LEVELS else Key.DEFAULT_REASONING.default

    def sampling_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for mlx_model.engine.SamplingSettings."""
        return {
            "temperature": self.value(Key.TEMPERATURE),
            "top_p": self.value(Key.TOP_P),
            "max_new_tokens": self.value(Key.MAX_NEW_TOKENS),
        }

    def context_length(self) -> int | None:
        """The context to load the model with; None lets the engine choose."""
        return self.value(Key.CONTEXT_LENGTH) or None
