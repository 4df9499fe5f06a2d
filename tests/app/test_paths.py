"""The data folder: one computation (mlx_model.paths) for the app and the terminal chat, and the
same folder Qt gives the app, so chats and models stored before stay found."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QStandardPaths

from gpt_oss_desktop.app import paths as app_paths
from gpt_oss_desktop.app.settings import configure_application
from gpt_oss_desktop.mlx_model import hub, paths
from gpt_oss_desktop.mlx_model.cli import main as chat_main


def test_the_terminal_chat_downloads_into_the_apps_models_folder(data_dir, monkeypatch):
    targets: list[Path] = []

    def plan_download(repo_id: str, models_dir: Path, **options):
        targets.append(models_dir)
        raise hub.HubError("offline")

    monkeypatch.setattr(hub, "plan_download", plan_download)
    err = io.StringIO()
    assert chat_main(["--model", "someone/not-downloaded", "--prompt", "hi"], stderr=err) == 2
    assert targets == [app_paths.data_dir() / "models"] and targets[0] == data_dir / "models"
    assert "offline" in err.getvalue()


@pytest.fixture
def application_identity(qapp):
    names = (QCoreApplication.applicationName(), QCoreApplication.organizationDomain())
    configure_application(qapp)
    yield
    QCoreApplication.setApplicationName(names[0])
    QCoreApplication.setOrganizationDomain(names[1])


def test_without_an_override_the_data_folder_is_qts_app_data_location(application_identity, tmp_path, monkeypatch):
    monkeypatch.delenv(paths.DATA_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # read on Linux only
    qt_location = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
    assert paths.data_dir() == qt_location
    if sys.platform != "darwin":
        assert qt_location == tmp_path / "xdg" / "gpt-oss-desktop"


def test_on_macos_the_data_folder_is_in_application_support(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.DATA_DIR_ENV)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.models_dir() == tmp_path / "Library" / "Application Support" / "gpt-oss-desktop" / "models"
