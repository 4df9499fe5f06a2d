"""Shared set-up for the app's tests: a store, typed settings in a temporary INI file, and the
app's data folder redirected to a temporary one."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from app import theme
from app.settings import Settings
from app.store import Store
from mlx_model.paths import DATA_DIR_ENV


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "chats.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def settings(tmp_path, qapp):
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def styled(qapp):
    """The app's light stylesheet, as on a Mac in light mode."""
    theme.watcher().apply(theme.LIGHT)
    yield
    qapp.setStyleSheet("")
