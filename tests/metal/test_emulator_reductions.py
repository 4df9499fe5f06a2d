"""Reductions with threadgroup memory, barriers and SIMD-group functions, under all schedules."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import MetalKernel

ROW_SUM = MetalKernel(
    name="emu_row_sum",
    input_names=["x", "cols"],
    output_names=["out"],
    source="""
    threadgroup float partial[32];
    uint row = threadgroup_position_in_grid.y;
    uint t = thread_index_in_threadgroup;
    uint n = threads_per_threadgroup.x;
    float acc = 0.0;
    for (uint i = t; i < uint(cols); i += n) {
      acc += float(x[row * cols + i]);
    }
    acc = simd_sum(acc);
    if (thread_index_in_simdgroup == 0) {
      partial[simdgroup_index_in_threadgroup] = acc;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (simdgroup_index_in_threadgroup == 0) {
      uint groups = (n + 31) / 32;
      float v = thread_index_in_simdgroup < groups ? partial[thread_index_in_simdgroup] : 0.0f;
      v = simd_sum(v);
      if (thread_index_in_simdgroup == 0) {
        out[row] = v;
      }
    }
    """,
)


@pytest.mark.parametrize("threads", [64, 96, 256, 1024])
def test_row_sum_matches_numpy_at_every_threadgroup_size(threads: int):
    rows, cols = 6, 1000
    x = np.random.default_rng(threads).standard_normal((rows, cols)).astype(np.float32)
    (out,) = ROW_SUM.run_all_schedules(
        inputs=[x, cols],
        output_shapes=[(rows,)],
        output_dtypes=[mx.float32],
        grid=(threads, rows, 1),
        threadgroup=(threads, 1, 1),
    )
    np.testing.assert_allclose(np.array(out), x.sum(axis=1), rtol=1e-5, atol=1e-4)


SOFTMAX = MetalKernel(
    name="emu_softmax",
    input_names=["x"],
    output_names=["y"],
    source="""
    // One threadgroup per row; each thread owns N consecutive elements.
    threadgroup float shared_max[32];
    threadgroup float shared_sum[32];
    uint row = threadgroup_position_in_grid.x;
    uint t = thread_index_in_threadgroup;
    uint lane = thread_index_in_simdgroup;
    uint sg = simdgroup_index_in_threadgroup;
    uint groups = (threads_per_threadgroup.x + 31) / 32;
    uint cols = threads_per_threadgroup.x * N;
    const device float* in = x + row * cols + t * N;

    float m = Limits<float>::finite_min;
    for (int k = 0; k < N; ++k) m = max(m, in[k]);
    m = simd_max(m);
    if (lane == 0) shared_max[sg] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    m = shared_max[0];
    for (uint g = 1; g < groups; ++g) m = max(m, shared_max[g]);

    float e[N];
    float s = 0.0f;
    for (int k = 0; k < N; ++k) {
      e[k] = metal::precise::exp(in[k] - m);
      s += e[k];
    }
    for (ushort offset = 16; offset > 0; offset /= 2) s += simd_shuffle_xor(s, offset);
    if (lane == 0) shared_sum[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    s = 0.0f;
    for (uint g = 0; g < groups; ++g) s += shared_sum[g];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (int k = 0; k < N; ++k) y[row * cols + t * N + k] = e[k] / s;
    """,
)


def test_softmax_with_simd_max_and_a_shuffle_xor_butterfly():
    rows, threads, per_thread = 3, 128, 4
    x = np.random.default_rng(1).standard_normal((rows, threads * per_thread)).astype(np.float32)
    x[1, 7] = -1e30  # far below the row's max: exp gives exactly 0
    (y,) = SOFTMAX.run_all_schedules(
        inputs=[x],
        output_shapes=[x.shape],
        output_dtypes=[mx.float32],
        grid=(threads * rows, 1, 1),
        threadgroup=(threads, 1, 1),
        template=[("N", per_thread)],
    )
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(np.array(y), e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert np.array(y)[1, 7] == 0.0


def test_bfloat16_input_reduced_into_a_float_output():
    kernel = MetalKernel(
        name="emu_bf16_dot",
        input_names=["a", "b"],
        output_names=["out"],
        source="""
        uint i = thread_position_in_grid.x;
        float p = float(a[i]) * float(b[i]);
        p = simd_sum(p);
        if (thread_index_in_simdgroup == 0) out[i / 32] = p;
        """,
    )
    rng = np.random.default_rng(2)
    a = mx.array(rng.standard_normal(128).astype(np.float32)).astype(mx.bfloat16)
    b = mx.array(rng.standard_normal(128).astype(np.float32)).astype(mx.bfloat16)
    (out,) = kernel.run_all_schedules(
        inputs=[a, b], output_shapes=[(4,)], output_dtypes=[mx.float32], grid=(128, 1, 1),
        threadgroup=(64, 1, 1),
    )
    products = np.array(a.astype(mx.float32)) * np.array(b.astype(mx.float32))
    np.testing.assert_allclose(np.array(out), products.reshape(4, 32).sum(axis=1), rtol=1e-5)


SIMD_FUNCTIONS = MetalKernel(
    name="emu_simd_functions",
    input_names=["x"],
    output_names=["divergent", "lanes", "shuffled", "scanned"],
    source="""
    uint t = thread_position_in_grid.x;
    uint lane = thread_index_in_simdgroup;
    // Divergent: only lanes 0..19 take part (0..15 in a 16-lane group).
    if (lane < 20) {
      divergent[t] = simd_sum(float(lane));
      lanes[t] = simd_sum(1u);
    } else {
      divergent[t] = -1.0f;
      lanes[t] = simd_sum(2u);
    }
    // Out-of-range sources return the lane's own value.
    shuffled[t] = simd_shuffle_down(x[t], 4) + 1000.0f * simd_broadcast(x[t], 3);
    scanned[t] = simd_prefix_exclusive_sum(x[t]) + 1000.0f * simd_max(x[t]);
    """,
)


def test_simd_functions_use_the_active_lanes_of_partial_and_divergent_groups():
    threads = 48  # the second SIMD-group has 16 lanes
    x = np.arange(threads, dtype=np.float32)
    divergent, lanes, shuffled, scanned = SIMD_FUNCTIONS.run_all_schedules(
        inputs=[x],
        output_shapes=[(threads,)] * 4,
        output_dtypes=[mx.float32, mx.uint32, mx.float32, mx.float32],
        grid=(threads, 1, 1),
        threadgroup=(threads, 1, 1),
    )
    lane = np.arange(threads) % 32
    group_size = np.where(np.arange(threads) < 32, 32, 16)
    active = np.minimum(group_size, 20)
    sum_of_active_lanes = active * (active - 1) / 2  # 190 in a full group, 120 in 16 lanes
    np.testing.assert_array_equal(np.array(divergent), np.where(lane < 20, sum_of_active_lanes, -1))
    expected_lanes = np.where(lane < 20, active, 2 * (group_size - 20))
    np.testing.assert_array_equal(np.array(lanes), expected_lanes)

    start = np.arange(threads) - lane
    source = lane + 4
    down = np.where(source < group_size, x[np.minimum(start + source, threads - 1)], x)
    np.testing.assert_array_equal(np.array(shuffled), down + 1000.0 * x[start + 3])

    exclusive = np.array([x[s:i].sum() for i, s in zip(range(threads), start)])
    maximum = x[start + group_size - 1]
    np.testing.assert_array_equal(np.array(scanned), exclusive + 1000.0 * maximum)


def test_the_portable_ucontext_fiber_switch_gives_the_same_sums(monkeypatch):
    monkeypatch.setenv("METAL_EMULATOR_CXXFLAGS", "-DMETAL_EMU_UCONTEXT")
    kernel = MetalKernel(
        name=ROW_SUM.name, input_names=ROW_SUM.input_names, output_names=ROW_SUM.output_names,
        source=ROW_SUM.source,
    )
    x = np.random.default_rng(3).standard_normal((4, 300)).astype(np.float32)
    (out,) = kernel.run_all_schedules(
        inputs=[x, 300], output_shapes=[(4,)], output_dtypes=[mx.float32],
        grid=(96, 4, 1), threadgroup=(96, 1, 1),
    )
    np.testing.assert_allclose(np.array(out), x.sum(axis=1), rtol=1e-5, atol=1e-4)


TILED_MATMUL = MetalKernel(
    name="emu_tiled_matmul",
    input_names=["a", "b", "dims"],
    output_names=["c"],
    source="""
    // c[M, N] = a[M, K] @ b[K, N] with 8x8 tiles in threadgroup memory; the grid is rounded up
    // to whole tiles and threads outside the matrix only help loading.
    threadgroup half tile_a[8][8];
    threadgroup float tile_b[8][8];
    const int M = dims[0], N = dims[1], K = dims[2];
    uint2 local = thread_position_in_threadgroup.xy;
    int row = int(thread_position_in_grid.y), col = int(thread_position_in_grid.x);
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += 8) {
      int ka = k0 + int(local.x), kb = k0 + int(local.y);
      tile_a[local.y][local.x] = (row < M && ka < K) ? a[row * K + ka] : half(0.0h);
      tile_b[local.y][local.x] = (kb < K && col < N) ? b[kb * N + col] : 0.0f;
      threadgroup_barrier(mem_flags::mem_threadgroup);
      for (int k = 0; k < 8; ++k) acc = fma(float(tile_a[local.y][k]), tile_b[k][local.x], acc);
      threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (row < M && col < N) c[row * N + col] = acc;
    """,
)


def test_tiled_matmul_with_barriers_in_a_loop():
    m, n, k = 37, 29, 50
    rng = np.random.default_rng(4)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float32)
    (c,) = TILED_MATMUL.run_all_schedules(
        inputs=[a, b, np.array([m, n, k], np.int32)], output_shapes=[(m, n)],
        output_dtypes=[mx.float32], grid=(32, 40, 1), threadgroup=(8, 8, 1),
    )
    np.testing.assert_allclose(np.array(c), a.astype(np.float32) @ b, rtol=1e-4, atol=1e-4)
