"""The custom kernels run by the emulator under every schedule, for the kernel tests."""

from __future__ import annotations

from typing import Any

import pytest

from gpt_oss_desktop.metal.emulator import MetalKernel
from gpt_oss_desktop.mlx_model.kernels.metal_kernels import MetalKernels


def all_schedules(**kernel_args: Any):
    """A kernel factory like mx.fast.metal_kernel whose kernels run under every emulator
    schedule (forward, reverse, random fiber orders) and fail on any disagreement."""
    kernel = MetalKernel(**kernel_args)
    return lambda **call: kernel.run_all_schedules(**call)


@pytest.fixture(scope="session")
def emulated() -> MetalKernels:
    """The custom kernels, each call checked under all schedules."""
    return MetalKernels(all_schedules)
