"""Confining code the model runs, by the operating system's own means.

Linux: bubblewrap, with no network namespace peers (`--unshare-net`), a read-only view of the
system, a private /tmp, and write access only to the chat's folder (also seen as /mnt/data, the
drive the model's tool text promises) and the kernel's runtime folder. macOS: sandbox-exec with a
deny-by-default profile allowing reads, writes under the same two folders and Unix sockets in the
runtime folder only. Elsewhere, or when the tool is missing, nothing runs: `SandboxUnavailable`
says why. Memory, CPU time and file size limits are set inside the sandbox by `confined_launch`.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

SANDBOX_EXEC = "/usr/bin/sandbox-exec"  # absolute, so a PATH entry cannot stand in for it


class SandboxUnavailable(RuntimeError):
    """This machine has no sandbox the tool may run code in."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 4 * 2**30  # address space (Linux enforces it; macOS does not reliably)
    cpu_seconds: int = 600  # CPU time of the kernel process since it started
    file_bytes: int = 1 * 2**30  # the largest file it may write


DEFAULT_LIMITS = Limits()


_MAC_PROFILE = """(version 1)
(deny default)
(allow process-exec) (allow process-fork)
(allow signal (target same-sandbox)) (allow process-info* (target same-sandbox))
(allow sysctl-read) (allow mach-host*) (allow ipc-posix-sem) (allow ipc-posix-shm) (allow user-preference-read)
(allow mach-lookup (global-name "com.apple.system.opendirectoryd.libinfo"))
(allow file-read*)
(allow file-ioctl (literal "/dev/null") (literal "/dev/urandom"))
(allow file-write* (subpath (param "WORK")) (subpath (param "RUNTIME")) (literal "/dev/null"))
(allow system-socket (socket-domain AF_UNIX))
(allow network-bind (local unix-socket (subpath (param "RUNTIME"))))
(allow network-outbound (remote unix-socket (subpath (param "RUNTIME"))))
"""


def sandbox_prefix(work: Path, runtime: Path) -> list[str]:
    """The command that runs what follows it confined to `work` and `runtime` (both writable)."""
    work, runtime = work.resolve(), runtime.resolve()
    if sys.platform.startswith("linux"):
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(
                "Python cannot run: bubblewrap (bwrap) is not installed, and code is never run "
                "unconfined. Install it (e.g. `apt-get install bubblewrap`) to use the python tool."
            )
        return [
            bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--bind", str(runtime), str(runtime), "--bind", str(work), str(work),
            "--tmpfs", "/mnt", "--bind", str(work), "/mnt/data", "--chdir", str(work), "--",
        ]
    if sys.platform == "darwin":
        if not Path(SANDBOX_EXEC).exists():
            raise SandboxUnavailable("Python cannot run: /usr/bin/sandbox-exec is missing, and code is never run unconfined.")
        return [SANDBOX_EXEC, "-p", _MAC_PROFILE, f"-DWORK={work}", f"-DRUNTIME={runtime}", "--"]
    raise SandboxUnavailable(f"Python cannot run: no sandbox is known for {sys.platform}, and code is never run unconfined.")


def sandbox_problem() -> str | None:
    """Why python cannot run on this machine (for Settings to say before it is used), or None."""
    try:
        sandbox_prefix(Path("."), Path("."))
    except SandboxUnavailable as error:
        return str(error)
    return None


def confined_launch(limits: Limits) -> list[str]:
    """`python kernel_launcher.py …` (run as a script, so the kernel never imports this package
    or MLX): sets the limits, then starts ipykernel."""
    return [sys.executable, str(Path(__file__).with_name("kernel_launcher.py")), str(limits.memory_bytes),
            str(limits.cpu_seconds), str(limits.file_bytes)]
