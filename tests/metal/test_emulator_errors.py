"""What the emulator must catch: races, undefined barriers, compile errors, unsupported code."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import (
    KernelExecutionError,
    MetalCompileError,
    MetalKernel,
    ScheduleDisagreement,
    UnsupportedConstruct,
)

NEIGHBOUR = MetalKernel(
    name="emu_neighbour",
    input_names=["x"],
    output_names=["y"],
    source="""
    threadgroup float buffer[64];
    uint t = thread_index_in_threadgroup;
    uint n = threads_per_threadgroup.x;
    buffer[t] = x[thread_position_in_grid.x];
    if (WITH_BARRIER) {
      threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    y[thread_position_in_grid.x] = buffer[(t + 1) % n];
    """,
)


def _neighbour(with_barrier: bool, **options) -> list[mx.array]:
    x = np.arange(128, dtype=np.float32)
    return NEIGHBOUR.run_all_schedules(
        inputs=[x], output_shapes=[(128,)], output_dtypes=[mx.float32],
        grid=(128, 1, 1), threadgroup=(64, 1, 1), template=[("WITH_BARRIER", with_barrier)],
        **options,
    )


def test_a_missing_barrier_is_detected_by_the_schedules():
    with pytest.raises(ScheduleDisagreement, match="emu_neighbour.*output 'y' differs") as error:
        _neighbour(with_barrier=False)
    assert "nan" in str(error.value)  # the forward order reads poisoned threadgroup memory


def test_the_same_kernel_with_its_barrier_agrees_under_every_schedule():
    (y,) = _neighbour(with_barrier=True)
    x = np.arange(128, dtype=np.float32).reshape(2, 64)
    np.testing.assert_array_equal(np.array(y), np.roll(x, -1, axis=1).reshape(-1))


def _run(kernel: MetalKernel, threads: int = 64) -> list[mx.array]:
    return kernel(
        inputs=[np.ones(threads, np.float32)], output_shapes=[(threads,)],
        output_dtypes=[mx.float32], grid=(threads, 1, 1), threadgroup=(threads, 1, 1),
    )


def test_an_early_return_before_a_barrier_is_an_error():
    kernel = MetalKernel(
        name="emu_early_return", input_names=["x"], output_names=["y"],
        source="""
        uint t = thread_position_in_grid.x;
        if (t >= 10) return;
        threadgroup_barrier(mem_flags::mem_threadgroup);
        y[t] = x[t];
        """,
    )
    message = r"emu_early_return.*reached by 10 threads.*54 returned"
    with pytest.raises(KernelExecutionError, match=message):
        _run(kernel)


def test_threads_at_different_barriers_are_an_error():
    kernel = MetalKernel(
        name="emu_split_barrier", input_names=["x"], output_names=["y"],
        source="""
        uint t = thread_position_in_grid.x;
        if (t < 32) {
          threadgroup_barrier(mem_flags::mem_threadgroup);
        } else {
          threadgroup_barrier(mem_flags::mem_device);
        }
        y[t] = x[t];
        """,
    )
    message = "different threadgroup_barrier calls: emu_split_barrier.metal:"
    with pytest.raises(KernelExecutionError, match=message):
        _run(kernel)


def test_a_compile_error_points_at_the_metal_line():
    kernel = MetalKernel(
        name="emu_broken", input_names=["x"], output_names=["y"],
        source="uint t = thread_position_in_grid.x;\ny[t] = x[t] + not_declared;\n",
    )
    # Line 1 is the signature's first line; the body's second line is line 6 of the text.
    with pytest.raises(MetalCompileError, match=r"emu_broken\.metal:6:\d+: error: 'not_declared'"):
        _run(kernel)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("texture2d<float> t;", "textures are not emulated"),
        ("float q = quad_sum(1.0f);", "quad-group functions"),
        ("double d = 1.0;", "Metal has no double"),
        ("threadgroup float s[4] = {0, 0, 0, 0};", "cannot be initialised"),
    ],
)
def test_unsupported_constructs_are_refused_with_their_line(body: str, message: str):
    kernel = MetalKernel(
        name="emu_unsupported", input_names=["x"], output_names=["y"],
        source=f"uint t = thread_position_in_grid.x;\n{body}\ny[t] = x[t];",
    )
    with pytest.raises(UnsupportedConstruct, match=f"{message}.*emu_unsupported.metal:6"):
        _run(kernel)
