"""The one place the app's data folder is computed, so the app and `gpt-oss-chat` share downloads.

Qt-free, so the terminal chat finds the app's models without Qt; it matches what Qt's
AppDataLocation gives the app (application name set, no organization name), so chats and models
stored by earlier versions of the app stay where they were.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APPLICATION_NAME = "gpt-oss-desktop"
DATA_DIR_ENV = "GPT_OSS_DESKTOP_DATA_DIR"
"""Points the app and the terminal chat at another data folder (tests, a second profile)."""


def data_dir() -> Path:
    """`$GPT_OSS_DESKTOP_DATA_DIR` when set; else `~/Library/Application Support/gpt-oss-desktop`
    on macOS and `$XDG_DATA_HOME/gpt-oss-desktop` (default `~/.local/share`) elsewhere. A relative
    XDG_DATA_HOME is ignored, as the XDG specification and Qt do."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APPLICATION_NAME
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / APPLICATION_NAME


def models_dir() -> Path:
    """Where downloaded models go (`<owner>/<name>` inside)."""
    return data_dir() / "models"


def server_cache_dir() -> Path:
    """Where the local server's conversations keep their prompt caches on disk: gpt-oss-serve's
    default and the app's Local server's, so either continues what the other left."""
    return data_dir() / "server" / "prompt-caches"
