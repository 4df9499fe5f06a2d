"""The emulator's exceptions; each message names the kernel it is about."""

from __future__ import annotations


class MetalEmulatorError(RuntimeError):
    """Base class: the kernel cannot be emulated, or it misbehaved."""


class UnsupportedConstruct(MetalEmulatorError):
    """The kernel uses something the emulator does not implement."""


class MetalCompileError(MetalEmulatorError):
    """The translated kernel did not compile; the message points at `<name>.metal:<line>`."""


class DispatchError(MetalEmulatorError, ValueError):
    """The call's arguments (grid, threadgroup, inputs, template) are invalid."""


class KernelExecutionError(MetalEmulatorError):
    """The kernel did something undefined on Metal, e.g. a barrier not every thread reaches."""


class ScheduleDisagreement(MetalEmulatorError):
    """Outputs differ between thread schedules: a race, such as a missing barrier."""
