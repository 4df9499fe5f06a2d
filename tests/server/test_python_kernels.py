"""The server's hosted python tool gives each conversation its own sandboxed kernel: two clients
never see each other's variables (even when they open with the same words), a conversation keeps
its own across turns and tool rounds, the least recently used kernel is shut down beyond the
capacity (never one a reply still holds), and shutting the server's tools down stops them all."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.harmony import tool_result_message, user_message
from gpt_oss_desktop.mlx_model.harmony.messages import assistant_message
from gpt_oss_desktop.mlx_model.server.conversation_kernels import ConversationKernels
from gpt_oss_desktop.mlx_model.server.hosted_tools import ServerTools
from gpt_oss_desktop.mlx_model.tools import Toolbox

HAS_SANDBOX = shutil.which("bwrap") is not None if sys.platform.startswith("linux") else sys.platform == "darwin"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not HAS_SANDBOX, reason="the python tool runs code only sandboxed (bubblewrap)")]


@pytest.fixture()
def toolbox(tmp_path: Path) -> Iterator[Toolbox]:
    with Toolbox(python=True, python_folder=tmp_path / "python", python_timeout_s=30.0) as box:
        yield box


def chat(*messages: dict) -> Chat:
    return Chat(list(messages))


def run(kernels: ConversationKernels, toolbox: Toolbox, conversation: Chat, code: str) -> str:
    """`code` run as the conversation's reply would run it: in the kernel held for it."""
    held = kernels.hold(conversation)
    try:
        return toolbox.with_kernel(held.kernel).run("python", code).text
    finally:
        kernels.release(held)


def test_clients_do_not_share_variables_and_a_conversation_keeps_its_own(toolbox: Toolbox) -> None:
    tools = ServerTools(toolbox)
    kernels = tools.kernels
    assert kernels is not None
    ask = user_message("Keep a number for me.")
    first_turn = chat(ask, assistant_message("secret = 1", channel="analysis", recipient="python"))
    assert run(kernels, toolbox, first_turn, "secret = 'alice'; print(secret)") == "alice\n"
    # another client opening with the same words is another conversation
    other = chat(user_message("Keep a number for me."))
    assert "NameError" in run(kernels, toolbox, other, "print(secret)")
    assert "NameError" in run(kernels, toolbox, chat(user_message("Hello")), "secret = 'bob'; print(missing)")
    # the first conversation goes on: within its turn (a tool's result came back), then a turn later
    within_turn = chat(*first_turn.messages, tool_result_message("python", "alice"))
    assert run(kernels, toolbox, within_turn, "print(secret)") == "alice\n"
    next_turn = chat(*within_turn.messages, assistant_message("Kept."), user_message("What was it?"))
    assert run(kernels, toolbox, next_turn, "print(secret)") == "alice\n"
    assert len(kernels.kernels) == 3 and all(kernel.started for kernel in kernels.kernels)
    work_folders = [kernel.work for kernel in kernels.kernels]
    assert len(set(work_folders)) == 3 and all(folder.parent == toolbox.python_folder for folder in work_folders)
    tools.close()
    assert kernels.kernels == [] and not any(folder.exists() for folder in work_folders)


def test_the_least_recently_used_kernel_goes_first_but_never_one_a_reply_holds(toolbox: Toolbox) -> None:
    kernels = ConversationKernels(toolbox.python_folder, toolbox.new_kernel, capacity=2)
    try:
        one, two, three = (chat(user_message(f"Conversation {n}"), tool_result_message("python", "")) for n in "123")
        held = kernels.hold(one)
        toolbox.with_kernel(held.kernel).run("python", "n = 1")
        run(kernels, toolbox, two, "n = 2")
        run(kernels, toolbox, three, "n = 3")  # over capacity: two goes, not one (still held)
        assert [kernel is held.kernel for kernel in kernels.kernels] == [True, False]
        three_kernel = kernels.kernels[1]
        assert run(kernels, toolbox, one, "print(n)") == "1\n" and held.holders == 1  # one is the latest now
        assert "NameError" in run(kernels, toolbox, two, "print(n)")  # two's state went with its kernel
        assert not three_kernel.started and not three_kernel.work.exists()  # now three went, one still held
        kernels.release(held)
        assert kernels.kernels[0] is held.kernel and held.kernel.started  # released, it stays while it fits
        run(kernels, toolbox, chat(user_message("Conversation 4"), tool_result_message("python", "")), "n = 4")
        assert held.kernel not in kernels.kernels and not held.kernel.started and not held.kernel.work.exists()
        # a reply that never ran python keeps no kernel
        run(kernels, toolbox, chat(user_message("No code")), "")
        assert len(kernels.kernels) == 2
    finally:
        kernels.close()


def test_a_conversation_that_runs_no_code_starts_no_kernel(toolbox: Toolbox) -> None:
    kernels = ConversationKernels(toolbox.python_folder, toolbox.new_kernel)
    held = kernels.hold(chat(user_message("Hi")))
    kernels.release(held)
    assert kernels.kernels == [] and not held.kernel.started and not toolbox.python_folder.exists()
    with pytest.raises(ValueError, match="at least one"):
        ConversationKernels(toolbox.python_folder, toolbox.new_kernel, capacity=0)
