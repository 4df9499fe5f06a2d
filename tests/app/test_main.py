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


def test_a_bus_error_in_the_running_app_is_named_at_its_next_start(data_dir, harmony_model_dir):
    """A real SIGBUS (what a model shard truncated under its memory map raises) kills the app;
    the next start says what happened and why, instead of a silent vanish."""
    import os
    import signal
    import time

    command = [sys.executable, "-m", "gpt_oss_desktop.app", "--model", str(harmony_model_dir)]
    running = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (data_dir / "running.json").exists() and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # the window is up and the model loading
        os.kill(running.pid, signal.SIGBUS)
        running.wait(60)
    finally:
        running.kill()
    assert running.returncode == -signal.SIGBUS
    assert "Bus error" in (data_dir / "crash.log").read_text()

    again = subprocess.run([*command, "--quit-after-load"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "gpt-oss quit unexpectedly the last time it ran (Bus error)" in again.stderr
    assert "loaded model's files are changed or removed" in again.stderr
