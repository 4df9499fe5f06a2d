"""Inside the sandbox: apply the resource limits to this process, then become the IPython kernel.

`python kernel_launcher.py MEMORY_BYTES CPU_SECONDS FILE_BYTES -f CONNECTION_FILE`;
limits set here are inherited by anything the kernel starts.
"""

from __future__ import annotations

import os
import resource
import runpy
import sys


def _limit(which: int, value: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


def main() -> None:
    memory, cpu, file_size = (int(value) for value in sys.argv[1:4])
    _limit(resource.RLIMIT_AS, memory)
    _limit(resource.RLIMIT_CPU, cpu)
    _limit(resource.RLIMIT_FSIZE, file_size)
    _limit(resource.RLIMIT_CORE, 0)
    # In the sandbox's own PID namespace our parent's PID means nothing: ipykernel would take the
    # mismatch for its parent's death and quit. The sandbox ends the kernel with its parent instead.
    os.environ.pop("JPY_PARENT_PID", None)
    sys.argv = ["ipykernel_launcher", *sys.argv[4:]]
    runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
