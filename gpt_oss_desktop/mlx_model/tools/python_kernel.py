"""The `python` tool: a stateful IPython kernel per chat, sandboxed, started on first use.

The kernel speaks to us over ZeroMQ Unix sockets in its runtime folder (TCP cannot cross the
sandbox's empty network namespace) and is interrupted by message (signals do not reach it inside
bubblewrap). A run that outlives its timeout is interrupted; if the kernel does not come back it
is restarted and the reply says the state was lost. Output is capped; images are kept aside for
the app and the model reads a placeholder.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox import DEFAULT_LIMITS, Limits, confined_launch, sandbox_prefix

TIMEOUT_S = 120.0  # the model's tool text: "time out after 120.0 seconds"
OUTPUT_LIMIT = 16_000  # characters the model reads from one run
NO_OUTPUT = "[WARN] No output available. Use print() to output anything to stdout to receive the output"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_INTERRUPT_GRACE_S = 5.0
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Image:
    mime: str
    data_base64: str


@dataclass
class RunResult:
    text: str
    images: list[Image] = field(default_factory=list)
    timed_out: bool = False
    restarted: bool = False


def _sandboxed_kernel_manager(sandbox_command: list[str], **options):
    """A KernelManager that starts ipykernel through the sandbox and the resource-limit launcher
    (jupyter_client is imported on first use: most chats never run code)."""
    from jupyter_client import KernelManager

    class SandboxedKernelManager(KernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            command = super().format_kernel_cmd(extra_arguments)
            if "-m" not in command or command[command.index("-m") + 1] != "ipykernel_launcher":
                raise RuntimeError(f"unexpected kernel command {command}")
            return [*sandbox_command, *command[command.index("-m") + 2 :]]

    return SandboxedKernelManager(**options)


class PythonKernel:
    """One chat's kernel: code in `work` (the chat's folder), its sockets in a private folder of
    the system's temporary directory made for each start: a Unix socket's path may hold only 104
    bytes on macOS (108 on Linux), which a chat folder under ~/Library/Application Support exceeds."""

    def __init__(self, work: Path, limits: Limits = DEFAULT_LIMITS, timeout_s: float = TIMEOUT_S,
                 output_limit: int = OUTPUT_LIMIT) -> None:
        self.work = work
        self.runtime: Path | None = None
        self.limits, self.timeout_s, self.output_limit = limits, timeout_s, output_limit
        self._manager = None
        self._client = None

    # -- lifetime ------------------------------------------------------------------------------

    def _start(self) -> None:
        self.runtime = Path(tempfile.mkdtemp(prefix="gpt-oss-kernel-"))  # private to this user (0700)
        try:
            prefix = sandbox_prefix(self.work, self.runtime)  # raises SandboxUnavailable before anything starts
        except Exception:
            self._remove_runtime()
            raise
        self.work.mkdir(parents=True, exist_ok=True)
        manager = _sandboxed_kernel_manager(
            [*prefix, *confined_launch(self.limits)],
            transport="ipc", ip=str(self.runtime / "kernel"), connection_file=str(self.runtime / "kernel.json"),
        )
        manager.kernel_spec.interrupt_mode = "message"
        home = self.runtime / "home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "IPYTHONDIR": str(home / "ipython"),
            "JUPYTER_RUNTIME_DIR": str(self.runtime), "MPLCONFIGDIR": str(home / "matplotlib"),
            "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        # The kernel's own console chatter would land in the user's terminal.
        manager.start_kernel(cwd=str(self.work), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=_START_TIMEOUT_S)
        except RuntimeError:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
            raise
        self._manager, self._client = manager, client

    def close(self) -> None:
        if self._client is not None:
            self._client.stop_channels()
        if self._manager is not None:
            self._manager.shutdown_kernel(now=True)
        self._manager = self._client = None
        self._remove_runtime()

    def _remove_runtime(self) -> None:
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.runtime = None

    def _restart(self) -> None:
        self.close()
        self._start()

    @property
    def started(self) -> bool:
        return self._manager is not None

    # -- running code --------------------------------------------------------------------------

    def run(self, code: str) -> RunResult:
        if self._manager is None:
            self._start()
        elif not self._manager.is_alive():
            self._restart()
            return self._run(code, note="[The Python kernel had stopped; it was restarted and its state is lost.]\n")
        return self._run(code)

    def _run(self, code: str, note: str = "") -> RunResult:
        client = self._client
        msg_id = client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        stdout: list[str] = []
        stderr: list[str] = []
        images: list[Image] = []
        deadline = time.monotonic() + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._timed_out(msg_id, note, stdout, stderr, images)
            try:
                message = client.get_iopub_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                if not self._manager.is_alive():
                    self._restart()
                    text = self._join(stdout, stderr)
                    return RunResult(note + (text + "\n" if text else "") + self._death_note(), images, restarted=True)
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                (stdout if content.get("name") == "stdout" else stderr).append(content.get("text", ""))
            elif kind in ("execute_result", "display_data"):
                data = content.get("data", {})
                for mime in ("image/png", "image/jpeg", "image/svg+xml"):
                    if mime in data:
                        images.append(Image(mime, data[mime]))
                        stdout.append(f"[{mime} output]\n")
                        break
                else:
                    text = data.get("text/plain", "")
                    stdout.append(text if text.endswith("\n") else text + "\n")
            elif kind == "error":
                stderr.append(_ANSI.sub("", "\n".join(content.get("traceback") or [])
                                        or f"{content.get('ename')}: {content.get('evalue')}") + "\n")
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        text = self._join(stdout, stderr)
        return RunResult(note + self._capped(text) if text else note + NO_OUTPUT, images)

    def _timed_out(self, msg_id: str, note: str, stdout: list[str], stderr: list[str], images: list[Image]) -> RunResult:
        self._manager.interrupt_kernel()
        deadline = time.monotonic() + _INTERRUPT_GRACE_S
        while time.monotonic() < deadline:
            try:
                message = self._client.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if (message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "status"
                    and message["content"].get("execution_state") == "idle"):
                said = (f"[ERROR] The code ran longer than {self.timeout_s:g} seconds and was interrupted; "
                        "the kernel's state is kept.")
                output = self._capped(self._join(stdout, stderr))
                return RunResult(note + (output + "\n" if output else "") + said, images, timed_out=True)
        self._restart()
        said = (f"[ERROR] The code ran longer than {self.timeout_s:g} seconds and did not stop when interrupted, "
                "so the kernel was restarted and its state is lost.")
        output = self._capped(self._join(stdout, stderr))
        return RunResult(note + (output + "\n" if output else "") + said, images, timed_out=True, restarted=True)

    def _death_note(self) -> str:
        return (f"[ERROR] The Python kernel died (memory limit {self.limits.memory_bytes // 2**20} MiB, CPU time "
                f"limit {self.limits.cpu_seconds} s); it was restarted and its state is lost.")

    @staticmethod
    def _join(stdout: list[str], stderr: list[str]) -> str:
        out, err = "".join(stdout), "".join(stderr)
        return f"{out.rstrip()}\n{err}" if out and err else out or err

    def _capped(self, text: str) -> str:
        if len(text) <= self.output_limit:
            return text
        head = text[: self.output_limit]
        return f"{head}\n[... output truncated: {len(text) - self.output_limit} more characters not shown]"
