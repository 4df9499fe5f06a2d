"""Starting the app: the command line, and a damaged chat database on start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from gpt_oss_desktop.app import paths
from gpt_oss_desktop.app.main import open_store, parse_args

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_model_can_be_given_on_the_command_line():
    assert parse_args(["--model", "openai/gpt-oss-20b"]).model == "openai/gpt-oss-20b"
    assert parse_args([]).model is None


def test_python_dash_m_app_is_the_entry_point():
    result = subprocess.run([sys.executable, "-m", "gpt_oss_desktop.app", "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert "--model PATH_OR_HUB_ID" in result.stdout


def test_a_damaged_database_is_moved_aside_when_the_user_agrees(qapp, data_dir, monkeypatch):
    path = paths.database_path()
    path.write_bytes(b"garbage" * 512)
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)

    store = open_store()
    assert store is not None and store.conversations() == []
    store.close()
    kept = [p for p in data_dir.iterdir() if "damaged" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == b"garbage" * 512


def test_a_damaged_database_is_left_alone_when_the_user_declines(qapp, data_dir, monkeypatch):
    path = paths.database_path()
    path.write_bytes(b"garbage" * 512)
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kwargs: QMessageBox.StandardButton.Cancel)
    assert open_store() is None
    assert path.read_bytes() == b"garbage" * 512
