"""The python tool: a real sandboxed IPython kernel, its state, limits and timeouts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from gpt_oss_desktop.mlx_model.tools import Limits, Toolbox
from gpt_oss_desktop.mlx_model.tools.python_kernel import NO_OUTPUT

HAS_SANDBOX = shutil.which("bwrap") is not None if sys.platform.startswith("linux") else sys.platform == "darwin"
pytestmark = [
    pytest.mark.skipif(not HAS_SANDBOX, reason="the python tool runs code only sandboxed, and this machine has no "
                       "bubblewrap (`apt-get install bubblewrap`): the kernel tests are skipped"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chat") / "work"
    with Toolbox(python=True, python_folder=folder, python_timeout_s=4.0,
                 python_limits=Limits(memory_bytes=1536 * 2**20, cpu_seconds=120)) as box:
        yield box


def run(toolbox: Toolbox, code: str) -> str:
    message = toolbox.call("python", code)
    assert (message["role"], message["name"], message["recipient"], message["channel"]) == (
        "tool", "python", "assistant", "analysis")
    return message["content"][0]["text"]


def test_state_is_kept_across_calls_and_output_is_assembled(toolbox: Toolbox) -> None:
    assert run(toolbox, "x = 41\nx + 1") == "42\n"
    assert run(toolbox, "import sys\nprint('hi'); print('err', file=sys.stderr); x") == "hi\n41\nerr\n"
    assert run(toolbox, "y = 1") == NO_OUTPUT
    error = run(toolbox, "1/0")
    assert "ZeroDivisionError: division by zero" in error and "\x1b[" not in error
    assert error.count("ZeroDivisionError: division by zero") == 1


def test_files_go_to_the_chat_folder_and_nowhere_else(toolbox: Toolbox, tmp_path: Path) -> None:
    folder = toolbox._python_folder
    assert run(toolbox, "open('/mnt/data/a.txt', 'w').write('kept'); import os; print(os.getcwd())") == f"{folder}\n"
    assert (folder / "a.txt").read_text() == "kept"
    outside = tmp_path / "escape.txt"
    reply = run(toolbox, f"open({str(outside)!r}, 'w').write('x')")
    # The host's /tmp is not even visible (a private one is); the rest of the system is read-only.
    assert "No such file or directory" in reply and not outside.exists()
    reply = run(toolbox, f"open({str(Path.home() / 'escape.txt')!r}, 'w')")
    assert "Read-only file system" in reply


def test_no_network(toolbox: Toolbox) -> None:
    reply = run(toolbox, "import socket\ns = socket.socket()\ns.settimeout(3)\ns.connect(('1.1.1.1', 80))")
    assert "Network is unreachable" in reply
    reply = run(toolbox, "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=3)")
    assert "ConnectionRefusedError" in reply or "unreachable" in reply


def test_memory_bomb_is_stopped_and_the_kernel_survives(toolbox: Toolbox) -> None:
    assert "MemoryError" in run(toolbox, "bomb = bytearray(8 * 2**30)")
    assert run(toolbox, "print('still here')") == "still here\n"


def test_timeout_interrupts_and_keeps_state_then_restarts_a_stuck_kernel(toolbox: Toolbox) -> None:
    run(toolbox, "kept = 'yes'")
    reply = run(toolbox, "import time\nprint('started', flush=True)\nwhile True: time.sleep(0.05)")
    assert reply.startswith("started\n") and "ran longer than 4 seconds and was interrupted" in reply
    assert run(toolbox, "print(kept)") == "yes\n"
    outcome = toolbox.run("python", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass")
    assert not outcome.ok and "did not stop when interrupted, so the kernel was restarted" in outcome.text
    assert "NameError" in run(toolbox, "print(kept)")
    assert run(toolbox, "print(2 + 2)") == "4\n"


def test_output_is_capped_and_images_are_kept(toolbox: Toolbox) -> None:
    reply = run(toolbox, "print('a' * 40000)")
    assert len(reply) < 17000 and reply.endswith("[... output truncated: 24001 more characters not shown]")
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    outcome = toolbox.run("python", f"from IPython.display import Image, display\nimport base64\n"
                                    f"display(Image(data=base64.b64decode({png!r})))")
    assert outcome.text == "[image/png output]\n" and outcome.images[0].mime == "image/png"
    assert outcome.images[0].data_base64.strip() == png


def test_approval_is_asked_for_python_only(toolbox: Toolbox) -> None:
    assert toolbox.needs_approval("python") and not toolbox.needs_approval("browser.search")


def test_without_a_sandbox_nothing_runs(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(sys, "platform", "linux")
    with Toolbox(python=True, python_folder=tmp_path / "w") as box:
        outcome = box.run("python", "print(1)")
    assert not outcome.ok and "never run unconfined" in outcome.text and not (tmp_path / "w").exists()


def test_a_chat_folder_too_deep_for_a_unix_socket_path_still_runs(tmp_path: Path) -> None:
    # The kernel's sockets would not fit beside a folder this deep: sun_path holds 104 bytes on
    # macOS (108 on Linux), and ~/Library/Application Support/… chat folders come close.
    folder = tmp_path / ("a-long-folder-name-" * 8) / "chat-0123456789abcdef0123456789abcdef" / "work"
    assert len(str(folder)) > 108
    with Toolbox(python=True, python_folder=folder, python_timeout_s=30.0) as box:
        assert run(box, "6 * 7") == "42\n"
        runtime = box._kernel.runtime
        assert runtime is not None and len(str(runtime)) < 60
    assert not runtime.exists()
