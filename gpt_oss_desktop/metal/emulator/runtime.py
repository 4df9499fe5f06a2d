"""The ctypes boundary to a compiled kernel library (see shim/metal_runtime.h)."""

from __future__ import annotations

import ctypes
from typing import Literal, Sequence

import numpy as np

Schedule = Literal["forward", "reverse", "random"]

_SCHEDULE_CODES: dict[str, int] = {"forward": 0, "reverse": 1, "random": 2}
_ERROR_SIZE = 4096


class LaunchConfig(ctypes.Structure):
    """Mirrors metal_emu::LaunchConfig."""

    _fields_ = [
        ("grid", ctypes.c_uint32 * 3),
        ("threadgroup", ctypes.c_uint32 * 3),
        ("schedule", ctypes.c_int32),
        ("workers", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("uses_fibers", ctypes.c_int32),
    ]


def launch(
    library: ctypes.CDLL,
    buffers: Sequence[np.ndarray],
    *,
    grid: tuple[int, int, int],
    threadgroup: tuple[int, int, int],
    schedule: Schedule,
    seed: int,
    workers: int,
    uses_fibers: bool,
) -> str | None:
    """Runs the kernel over the grid; returns the runtime's error message, or None."""
    if schedule not in _SCHEDULE_CODES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {list(_SCHEDULE_CODES)}")
    config = LaunchConfig(
        (ctypes.c_uint32 * 3)(*grid),
        (ctypes.c_uint32 * 3)(*threadgroup),
        _SCHEDULE_CODES[schedule],
        workers,
        seed,
        int(uses_fibers),
    )
    pointers = (ctypes.c_void_p * max(1, len(buffers)))(*(b.ctypes.data for b in buffers))
    error = ctypes.create_string_buffer(_ERROR_SIZE)
    entry = library.metal_emu_launch
    entry.restype = ctypes.c_int
    entry.argtypes = [
        ctypes.POINTER(LaunchConfig), ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong,
    ]
    if entry(ctypes.byref(config), pointers, error, _ERROR_SIZE) != 0:
        return error.value.decode(errors="replace")
    return None
