"""A CPU emulator for the Metal kernels MLX runs through `mx.fast.metal_kernel`.

See metal/README.md for what it supports and how to use it.
"""

from gpt_oss_desktop.metal.emulator.errors import (
    DispatchError,
    KernelExecutionError,
    MetalCompileError,
    MetalEmulatorError,
    ScheduleDisagreement,
    UnsupportedConstruct,
)
from gpt_oss_desktop.metal.emulator.runner import ALL_SCHEDULES, MetalKernel

__all__ = [
    "ALL_SCHEDULES",
    "DispatchError",
    "KernelExecutionError",
    "MetalCompileError",
    "MetalEmulatorError",
    "MetalKernel",
    "ScheduleDisagreement",
    "UnsupportedConstruct",
]
