"""The next start names how the last run ended: killed, crashed (a fatal signal such as the
SIGBUS of a model file truncated under its memory map, caught by faulthandler in a file), a
reply the disk could not take, or a clean quit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from gpt_oss_desktop.app.run_record import RunRecord


def test_a_clean_quit_leaves_nothing_to_explain(tmp_path):
    record = RunRecord(tmp_path)
    assert record.begin() is None
    record.end(unsaved=None)
    assert RunRecord(tmp_path).previous_end() is None


def test_a_run_that_never_ended_was_killed(tmp_path):
    RunRecord(tmp_path).begin()  # no end(): SIGKILL, or the power went
    assert "was killed" in RunRecord(tmp_path).previous_end()


def test_a_reply_the_disk_could_not_take_is_named(tmp_path):
    record = RunRecord(tmp_path)
    record.begin()
    record.end(unsaved="The disk is full, so the chats could not be saved.")
    cause = RunRecord(tmp_path).previous_end()
    assert "could not be saved" in cause and "disk is full" in cause


def test_a_bus_error_is_a_clear_message_at_the_next_start(tmp_path):
    """A real SIGBUS in a child process that armed the record, as the app does at start."""
    script = textwrap.dedent(f"""
        import os, signal
        from gpt_oss_desktop.app.run_record import RunRecord
        RunRecord(__import__("pathlib").Path({str(tmp_path)!r})).begin()
        os.kill(os.getpid(), signal.SIGBUS)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGBUS
    record = RunRecord(tmp_path)
    cause = record.previous_end()
    assert cause.startswith("The app crashed (Bus error)") and "model's files are changed" in cause
    assert record.begin() == cause  # read once more at this start, then the new run begins
    assert record.crash_notice().startswith("gpt-oss quit unexpectedly the last time it ran (Bus error).")
    record.end(unsaved=None)
    assert record.previous_end() is None
