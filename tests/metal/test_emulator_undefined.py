"""What Metal leaves undefined, modelled or refused by the emulator rather than idealised:
component stores into shared vectors, strided inputs, fast math's infinities and NaN,
float denormals."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import (
    ALL_SCHEDULES,
    DispatchError,
    KernelExecutionError,
    MetalKernel,
    UnsupportedConstruct,
)

LANES = 32


def run(source: str, *, name: str, inputs=(), outputs: int = LANES, schedule: str = "forward",
        header: str = "", ensure_row_contiguous: bool = True, dtype=mx.float32) -> np.ndarray:
    kernel = MetalKernel(
        name=name, input_names=[f"in{i}" for i in range(len(inputs))] or ["unused"],
        output_names=["out"], source=source, header=header,
        ensure_row_contiguous=ensure_row_contiguous,
    )
    (out,) = kernel(
        inputs=list(inputs) or [np.zeros(1, np.float32)], output_shapes=[(outputs,)],
        output_dtypes=[dtype], grid=(LANES, 1, 1), threadgroup=(LANES, 1, 1), schedule=schedule,
    )
    return np.array(out.astype(mx.float32))


# Lane i writes component i % 4 of float4 i / 4: the race in the kernels.
PLANTED_RACE = """
threadgroup float4 tile[8];
const uint i = thread_position_in_threadgroup.x;
tile[i / 4][i % 4] = float(i);
threadgroup_barrier(mem_flags::mem_threadgroup);
out[i] = ((threadgroup float*)tile)[i];
"""


@pytest.mark.parametrize("schedule,seed", ALL_SCHEDULES)
def test_a_planted_component_store_race_loses_three_of_four_values(schedule: str, seed: int):
    """In lockstep every lane loads the whole float4, then every lane stores it back: one
    lane's component survives per vector, the others keep the 0xFF poison (NaN)."""
    kernel = MetalKernel(name="planted_race", input_names=["unused"], output_names=["out"],
                         source=PLANTED_RACE)
    (out,) = kernel(inputs=[np.zeros(1, np.float32)], output_shapes=[(LANES,)],
                    output_dtypes=[mx.float32], grid=(LANES, 1, 1), threadgroup=(LANES, 1, 1),
                    schedule=schedule, seed=seed)
    values = np.array(out).reshape(8, 4)
    survivors = ~np.isnan(values)
    assert (survivors.sum(axis=1) == 1).all(), values
    assert (values[survivors] == np.arange(LANES).reshape(8, 4)[survivors]).all()


def test_the_planted_race_fails_the_schedule_check():
    kernel = MetalKernel(name="planted_race", input_names=["unused"], output_names=["out"],
                         source=PLANTED_RACE)
    with pytest.raises(Exception, match="differs between the forward schedule"):
        kernel.run_all_schedules(inputs=[np.zeros(1, np.float32)], output_shapes=[(LANES,)],
                                 output_dtypes=[mx.float32], grid=(LANES, 1, 1),
                                 threadgroup=(LANES, 1, 1))


def test_the_same_race_into_device_memory_through_a_vector_view_loses_values_too():
    out = run("""
    const uint i = thread_position_in_grid.x;
    ((device float4*)out)[i / 4][i % 4] = float(i);
    """, name="device_vector_race")
    assert np.isnan(out).sum() == 3 * LANES // 4


@pytest.mark.parametrize("store", [
    "const float b = float(i & ~3u); tile[i / 4] = float4(b, b + 1.0f, b + 2.0f, b + 3.0f);",
    "((threadgroup float*)tile)[i] = float(i);",
], ids=["whole-vectors", "scalar-view"])
def test_whole_vector_and_scalar_view_staging_lose_nothing(store: str):
    """The two fixes: four lanes storing the same whole vector, or scalar stores."""
    out = run(PLANTED_RACE.replace("tile[i / 4][i % 4] = float(i);", store), name="staging")
    np.testing.assert_array_equal(out, np.arange(LANES))


def test_members_swizzles_and_math_on_threadgroup_vectors_work_without_a_race():
    """One lane per vector: component, swizzle and compound stores are exact, and shared
    vectors read as vectors in math functions and operators."""
    out = run("""
    threadgroup float4 tile[LANES_];
    const uint i = thread_position_in_threadgroup.x;
    tile[i] = float4(0.0f);
    tile[i].x = 1.0f;
    tile[i].yz = float2(2.0f, 3.0f);
    tile[i][3] += 4.0f;
    tile[i] *= 2.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    const float4 v = tile[i];
    out[i] = dot(tile[i], float4(1.0f)) + max(tile[i][0], 0.0f) + (tile[i] * 0.5f).w
        + float4(tile[i].xy, tile[i].zw).z + v.y * 0.0f;
    """.replace("LANES_", str(LANES)), name="shared_members")
    # tile = (2, 4, 6, 8): dot 20, max 2, w/2 4, z 6.
    np.testing.assert_array_equal(out, np.full(LANES, 32.0))


def test_strided_views_reach_the_kernel_with_their_strides():
    view = mx.arange(8 * LANES, dtype=mx.float32).reshape(LANES, 8)[:, 3]  # stride 8
    reads_strides = "out[thread_position_in_grid.x] = in0[thread_position_in_grid.x * in0_strides[0]];"
    out = run(reads_strides, name="strided_read", inputs=[view], ensure_row_contiguous=False)
    np.testing.assert_array_equal(out, np.array(view))


def test_a_strided_view_to_a_kernel_that_ignores_strides_is_refused():
    view = mx.arange(8 * LANES, dtype=mx.float32).reshape(LANES, 8)[:, 3]  # stride 8
    ignores_strides = "out[thread_position_in_grid.x] = in0[thread_position_in_grid.x];"
    with pytest.raises(DispatchError, match="in0.*strided view.*in0_strides"):
        run(ignores_strides, name="strided_ignored", inputs=[view], ensure_row_contiguous=False)
    # With ensure_row_contiguous (MLX's default) MLX copies the view first, as the emulator does.
    out = run(ignores_strides, name="strided_copied", inputs=[view])
    np.testing.assert_array_equal(out, np.array(view))


@pytest.mark.parametrize("construct", [
    "float m = -INFINITY;",
    "float m = NAN;",
    "float m = numeric_limits<float>::infinity();",
    "bool m = isnan(0.0f);",
    "float m = Limits<float>::min;",
])
def test_fast_math_undefined_constructs_are_refused(construct: str):
    with pytest.raises(UnsupportedConstruct, match="fast math"):
        run(construct + " out[thread_position_in_grid.x] = float(m);", name="fast_math")


@pytest.mark.parametrize("call", [
    "min(x, 1.0f)", "max(1.0f, x)", "clamp(x, 0.0f, 1.0f)", "fmax(x, 0.0f)", "simd_max(x)",
])
def test_min_max_with_a_nan_operand_stop_the_kernel(call: str):
    source = f"""
    const uint i = thread_position_in_grid.x;
    const float x = in0[i];
    out[i] = {call};
    """
    values = np.ones(LANES, np.float32)
    assert (run(source, name="nan_ok", inputs=[values]) == 1).all()
    values[5] = np.nan
    with pytest.raises(KernelExecutionError, match=r"\(\) got a NaN operand"):
        run(source, name="nan_operand", inputs=[values])


def test_float_denormals_are_flushed_to_zero_and_half_denormals_kept():
    denormal = np.float32(2.0**-130)
    source = """
    const uint i = thread_position_in_grid.x;
    const float read = in0[i] * 2.0f;                 // a denormal operand reads as 0
    const float made = in1[i] * 0.5f;                 // a denormal result is flushed
    const half kept = half(in2[i]) * half(1.0h);      // half denormals stay
    out[i] = i == 0 ? read : i == 1 ? made : float(kept) * 65536.0f;
    """
    normal = np.full(LANES, 2.0**-126, np.float32)
    half_denormal = np.full(LANES, np.float16(2.0**-20))
    out = run(source, name="denormals", outputs=LANES,
              inputs=[np.full(LANES, denormal), normal, half_denormal])
    assert out[0] == 0.0 and out[1] == 0.0
    assert out[2] == np.float32(2.0**-20) * 65536.0
