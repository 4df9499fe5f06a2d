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


def one_schedule(**kernel_args: Any):
    """A kernel factory whose kernels run under one random fiber order: for the full-width
    cases, four times the cost of a schedule each; the code paths they take are checked under
    every schedule by the small cases."""
    kernel = MetalKernel(**kernel_args)
    return lambda **call: kernel(**call, schedule="random", seed=1)


@pytest.fixture(scope="session")
def emulated_once() -> MetalKernels:
    """The custom kernels, each call run under one schedule."""
    return MetalKernels(one_schedule)
