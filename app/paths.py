"""Where the app keeps its files: the platform's app data folder, and the assets beside the code."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QStandardPaths

DATA_DIR_ENV = "GPT_OSS_DESKTOP_DATA_DIR"
"""Points the app at another data folder (tests, a second profile)."""

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


def data_dir() -> Path:
    """`~/Library/Application Support/gpt-oss-desktop` on macOS (Qt's AppDataLocation once the
    application name is set), created if missing; `$GPT_OSS_DESKTOP_DATA_DIR` when set."""
    override = os.environ.get(DATA_DIR_ENV)
    folder = Path(override) if override else Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def database_path() -> Path:
    return data_dir() / "chats.sqlite3"


def models_dir() -> Path:
    """Where models downloaded by the app go (`<owner>/<name>` inside)."""
    return data_dir() / "models"


def asset(name: str) -> Path:
    return ASSETS_DIR / name
