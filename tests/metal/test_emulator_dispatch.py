"""Dispatch as MLX does it: grids of threads, non-uniform edge groups, strided inputs, atomics,
uninitialised outputs and threadgroup memory."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import DispatchError, MetalKernel

POSITIONS = MetalKernel(
    name="emu_positions",
    input_names=["scale"],
    output_names=["out"],
    source="""
    uint3 p = thread_position_in_grid;
    uint3 g = threads_per_grid;
    uint i = (p.z * g.y + p.y) * g.x + p.x;
    uint3 tg = threadgroup_position_in_grid;
    uint3 local = thread_position_in_threadgroup;
    uint3 size = threads_per_threadgroup;
    uint3 dispatched = dispatch_threads_per_threadgroup;
    uint3 groups = threadgroups_per_grid;
    uint linear = (local.z * size.y + local.y) * size.x + local.x;
    device uint* o = out + i * 12;
    o[0] = tg.x; o[1] = tg.y; o[2] = tg.z;
    o[3] = size.x; o[4] = size.y; o[5] = size.z;
    o[6] = linear == thread_index_in_threadgroup;
    o[7] = all(tg * dispatched + local == p);
    o[8] = groups.x * 100 + groups.y * 10 + groups.z;
    o[9] = simdgroups_per_threadgroup;
    o[10] = uint(float(half(p.x) * half(scale)));
    o[11] = all(grid_size == g) && all(grid_origin == uint3(0));
    """,
)


@pytest.mark.parametrize(
    ("grid", "group"),
    [((50, 37, 1), (16, 8, 1)), ((5, 6, 7), (4, 4, 2))],
    ids=["2d-non-uniform", "3d"],
)
def test_grid_counts_threads_and_edge_threadgroups_are_smaller(grid, group):
    gx, gy, gz = grid
    (out,) = POSITIONS(
        inputs=[0.5],
        output_shapes=[(gz, gy, gx, 12)],
        output_dtypes=[mx.uint32],
        grid=grid,
        threadgroup=group,
    )
    out = np.array(out)
    z, y, x = np.meshgrid(np.arange(gz), np.arange(gy), np.arange(gx), indexing="ij")
    tg = [c // t for c, t in zip((x, y, z), group)]
    size = [np.minimum(t, n - g * t) for g, t, n in zip(tg, group, grid)]
    for k in range(3):
        np.testing.assert_array_equal(out[..., k], tg[k])
        np.testing.assert_array_equal(out[..., 3 + k], size[k])
    assert out[..., 6].all() and out[..., 7].all() and out[..., 11].all()
    groups = [-(-n // t) for n, t in zip(grid, group)]
    assert (out[..., 8] == groups[0] * 100 + groups[1] * 10 + groups[2]).all()
    np.testing.assert_array_equal(out[..., 9], -(-(size[0] * size[1] * size[2]) // 32))
    np.testing.assert_array_equal(out[..., 10], (x * 0.5).astype(np.uint32))


def test_threadgroup_is_clamped_to_the_grid():
    (out,) = POSITIONS(
        inputs=[1.0], output_shapes=[(3, 12)], output_dtypes=[mx.uint32],
        grid=(3, 1, 1), threadgroup=(256, 1, 1),
    )
    np.testing.assert_array_equal(np.array(out)[:, 3:6], [[3, 1, 1]] * 3)


def test_atomic_outputs_with_init_value():
    kernel = MetalKernel(
        name="emu_atomics",
        input_names=["x"],
        output_names=["total", "count", "largest"],
        source="""
        uint i = thread_position_in_grid.x;
        atomic_fetch_add_explicit(&total[i % 4], x[i], memory_order_relaxed);
        atomic_fetch_add_explicit(&count[0], 1u, memory_order_relaxed);
        atomic_fetch_max_explicit(&largest[0], uint(x[i]), memory_order_relaxed);
        """,
        atomic_outputs=True,
    )
    x = np.arange(1000, dtype=np.float32)
    total, count, largest = kernel.run_all_schedules(
        inputs=[x], output_shapes=[(4,), (1,), (1,)],
        output_dtypes=[mx.float32, mx.uint32, mx.uint32],
        grid=(1000, 1, 1), threadgroup=(64, 1, 1), init_value=0, rtol=1e-6,
    )
    np.testing.assert_allclose(np.array(total), x.reshape(-1, 4).sum(axis=0), rtol=1e-6)
    assert np.array(count)[0] == 1000 and np.array(largest)[0] == 999


STRIDED = """
    uint i = thread_position_in_grid.x;
    out[i] = x[elem_to_loc(i, x_shape, x_strides, x_ndim)];
"""


@pytest.mark.parametrize("ensure_row_contiguous", [False, True])
def test_strided_inputs_reach_elem_to_loc(ensure_row_contiguous: bool):
    kernel = MetalKernel(
        name="emu_strided", input_names=["x"], output_names=["out"], source=STRIDED,
        ensure_row_contiguous=ensure_row_contiguous,
    )
    base = np.arange(6 * 10, dtype=np.float32).reshape(6, 10)
    view = base.T[::2, 1:]  # shape (5, 5), strides neither row-major nor positive-unit
    (out,) = kernel(
        inputs=[view], output_shapes=[(view.size,)], output_dtypes=[mx.float32],
        grid=(view.size, 1, 1), threadgroup=(32, 1, 1),
    )
    np.testing.assert_array_equal(np.array(out), view.reshape(-1))


def test_outputs_without_init_value_are_poisoned():
    kernel = MetalKernel(
        name="emu_half_written", input_names=["x"], output_names=["out", "bits"],
        source="""
        uint i = thread_position_in_grid.x;
        if (i % 2 == 0) { out[i] = x[i]; bits[i] = 7; }
        """,
    )
    out, bits = kernel(
        inputs=[np.ones(16, np.float32)], output_shapes=[(16,), (16,)],
        output_dtypes=[mx.float32, mx.uint32], grid=(16, 1, 1), threadgroup=(16, 1, 1),
    )
    assert np.isnan(np.array(out)[1::2]).all() and (np.array(out)[::2] == 1).all()
    assert (np.array(bits)[1::2] == 0xFFFFFFFF).all()


def test_threadgroup_memory_is_poisoned_between_threadgroups():
    kernel = MetalKernel(
        name="emu_stale_threadgroup_memory", input_names=["x"], output_names=["out"],
        source="""
        threadgroup float buffer[32];
        uint t = thread_index_in_threadgroup;
        if (threadgroup_position_in_grid.x == 0) buffer[t] = x[t];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        out[thread_position_in_grid.x] = buffer[t];
        """,
    )
    (out,) = kernel(
        inputs=[np.ones(32, np.float32)], output_shapes=[(64,)], output_dtypes=[mx.float32],
        grid=(64, 1, 1), threadgroup=(32, 1, 1), workers=1,
    )
    assert (np.array(out)[:32] == 1).all() and np.isnan(np.array(out)[32:]).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (dict(threadgroup=(64, 32, 1)), r"Thread group size \(2048\) is greater"),
        (dict(threadgroup=(0, 1, 1)), "zero size"),
        (dict(grid=(4, 1)), "3 dimensions"),
        (dict(inputs=[]), "Expected `inputs` to have size 1"),
        (dict(template=[("T", 1.5)]), "Invalid template argument"),
    ],
)
def test_invalid_dispatch_arguments_are_refused(call: dict, message: str):
    arguments = dict(
        inputs=[np.ones(4, np.float32)], output_shapes=[(4,)], output_dtypes=[mx.float32],
        grid=(4, 1, 1), threadgroup=(4, 1, 1),
    )
    kernel = MetalKernel(name="emu_refused", input_names=["x"], output_names=["y"], source="")
    with pytest.raises(DispatchError, match=message):
        kernel(**{**arguments, **call})
