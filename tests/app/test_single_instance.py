"""One app per data folder: a second launch (a real `python -m app` process) hands its model to
the running window and quits; a lock left by a killed app is taken over; a running owner that
does not answer is named, not overridden."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from gpt_oss_desktop.app.single_instance import LOCK_NAME, SingleInstance

REPO_ROOT = Path(__file__).resolve().parents[2]


def _environment(data_dir: Path) -> dict[str, str]:
    from gpt_oss_desktop.mlx_model.paths import DATA_DIR_ENV

    return {**os.environ, DATA_DIR_ENV: str(data_dir), "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO_ROOT)}


def _python(code: str, data_dir: Path, **kwargs) -> subprocess.Popen:
    """A separate process that takes the data folder's lock as the app does."""
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from pathlib import Path
        from PySide6.QtCore import QCoreApplication
        from gpt_oss_desktop.app.single_instance import SingleInstance
        app = QCoreApplication([])
        instance = SingleInstance(Path({str(data_dir)!r}))
        assert instance.acquire()
        print("owner", flush=True)
    """) + textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", script], env=_environment(data_dir), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True, **kwargs)


def test_a_second_launch_hands_its_model_to_the_running_window_and_quits(qtbot, window, data_dir, tmp_path):
    instance = SingleInstance(data_dir)
    assert instance.acquire()
    instance.arguments_received.connect(window.take_launch)
    window.showMinimized()
    model = tmp_path / "launch" / "not-a-model"
    model.mkdir(parents=True)
    try:
        with qtbot.waitSignal(instance.arguments_received, timeout=60_000) as received:
            second = subprocess.Popen([sys.executable, "-m", "gpt_oss_desktop.app", "--model", "not-a-model"],
                                      env=_environment(data_dir), cwd=model.parent,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _out, err = second.communicate(timeout=60)
    finally:
        instance.release()
    assert second.returncode == 0, err
    assert "handed this launch over" in err
    assert received.args == [{"model": str(model.resolve())}]  # made absolute: the apps' folders differ
    assert window.isVisible() and not window.isMinimized()
    assert str(model.resolve()) in window.banner.label.text()  # it tried to open it, and says why it could not


def test_a_lock_left_by_a_killed_app_is_taken_over(qtbot, data_dir):
    owner = _python("os.kill(os.getpid(), signal.SIGKILL)", data_dir)
    assert owner.stdout.readline().strip() == "owner"
    owner.wait(timeout=30)
    assert owner.returncode == -signal.SIGKILL
    assert (data_dir / LOCK_NAME).exists()  # left behind, as after a crash

    instance = SingleInstance(data_dir)
    assert instance.acquire()
    try:  # and it listens on the name the killed one left a socket under
        with qtbot.waitSignal(instance.arguments_received, timeout=30_000) as received:
            later = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
                from pathlib import Path
                from PySide6.QtCore import QCoreApplication
                from gpt_oss_desktop.app.single_instance import SingleInstance
                app = QCoreApplication([])
                later = SingleInstance(Path({str(data_dir)!r}))
                print(later.acquire(), later.hand_over({{"model": "openai/gpt-oss-20b"}}), flush=True)
            """)], env=_environment(data_dir), cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        out, _ = later.communicate(timeout=30)
    finally:
        instance.release()
    assert out.split() == ["False", "True"]
    assert received.args == [{"model": "openai/gpt-oss-20b"}]


def test_a_running_owner_that_does_not_answer_is_named_and_left_alone(qapp, data_dir):
    owner = _python("time.sleep(60)", data_dir)  # holds the lock, never runs its event loop
    try:
        assert owner.stdout.readline().strip() == "owner"
        later = SingleInstance(data_dir)
        assert not later.acquire()
        assert not later.hand_over({"model": None}, timeout_ms=300)
        assert f"process {owner.pid}" in later.owner()
    finally:
        owner.kill()
        owner.wait(timeout=30)
