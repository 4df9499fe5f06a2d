"""Shared set-up for the app's tests: a store and typed settings in a temporary INI file (the
data folder is redirected to a temporary one for every test, in tests/conftest.py)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings

from gpt_oss_desktop.app import theme
from gpt_oss_desktop.app.model_session import ModelSession
from gpt_oss_desktop.app.session import ChatSession
from gpt_oss_desktop.app.settings import Settings
from gpt_oss_desktop.app.store import Store
from gpt_oss_desktop.app.window import MainWindow
from gpt_oss_desktop.app.worker import EngineHost


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


@pytest.fixture
def window(qtbot, store, settings, data_dir):
    """The main window on an engine with no model loaded."""
    engine = EngineHost()
    session = ChatSession(store, settings, engine, ModelSession(settings, engine, models_dir=data_dir / "models"))
    main = MainWindow(session, settings, data_dir / "models")
    qtbot.addWidget(main)
    yield main
    assert engine.shutdown()
    main.deleteLater()  # now, not in a later test, where the theme watcher would still reach it
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
