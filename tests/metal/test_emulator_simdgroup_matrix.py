"""SIMD-group matrices in the emulator: loads, stores and 8x8 products against numpy, and the
errors Metal leaves undefined (divergent lanes, partial SIMD-groups, non-uniform addresses)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import KernelExecutionError, MetalKernel

# One SIMD-group per 8x8 tile of c = a · b (+ c0), from device memory, in element type T with
# an accumulator of type Acc. With TRANSPOSED_B, b arrives as [N, K] and is loaded transposed;
# with TRANSPOSED_OUT, c is stored transposed ([N, M]).
GEMM = MetalKernel(
    name="emu_simdgroup_gemm",
    input_names=["a", "b", "c0", "depth"],
    output_names=["c"],
    source="""
    const uint column = 8 * (threadgroup_position_in_grid.x);
    const uint row = 8 * threadgroup_position_in_grid.y;
    const uint rows = 8 * threadgroups_per_grid.y;
    const uint columns = 8 * threadgroups_per_grid.x;
    simdgroup_matrix<Acc, 8, 8> acc;
    simdgroup_load(acc, c0, columns, ulong2(column, row));
    for (uint k = 0; k < depth; k += 8) {
      simdgroup_matrix<T, 8, 8> left, right;
      simdgroup_load(left, a + row * depth, depth, ulong2(k, 0));
      if (TRANSPOSED_B) {
        simdgroup_load(right, b, depth, ulong2(k, column), true);
      } else {
        simdgroup_load(right, b + k * columns + column, columns);
      }
      simdgroup_multiply_accumulate(acc, left, right, acc);
    }
    if (TRANSPOSED_OUT) {
      simdgroup_store(acc, c, rows, ulong2(row, column), true);
    } else {
      simdgroup_store(acc, c + row * columns + column, columns);
    }
    """,
)


def _gemm(
    element: mx.Dtype, accumulator: mx.Dtype, *, rows: int = 16, depth: int = 24, columns: int = 16,
    transposed_b: bool = False, transposed_out: bool = False, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = mx.array(rng.standard_normal((rows, depth)).astype(np.float32)).astype(element)
    b = mx.array(rng.standard_normal((depth, columns)).astype(np.float32)).astype(element)
    c0 = mx.array(rng.standard_normal((rows, columns)).astype(np.float32)).astype(accumulator)
    (c,) = GEMM.run_all_schedules(
        inputs=[a, b.T if transposed_b else b, c0, depth],
        output_shapes=[(columns, rows) if transposed_out else (rows, columns)],
        output_dtypes=[accumulator],
        grid=(32 * columns // 8, rows // 8, 1), threadgroup=(32, 1, 1),
        template=[("T", element), ("Acc", accumulator), ("TRANSPOSED_B", transposed_b),
                  ("TRANSPOSED_OUT", transposed_out)],
    )
    result = np.array(c.astype(mx.float32))
    if transposed_out:
        result = result.T
    as64 = [np.array(t.astype(mx.float32)).astype(np.float64) for t in (a, b, c0)]
    return result, as64[0] @ as64[1] + as64[2]


@pytest.mark.parametrize(
    ("element", "accumulator", "tolerance"),
    [
        (mx.float32, mx.float32, 1e-5),
        (mx.float16, mx.float16, 2e-2),  # the product rounded once to half
        (mx.bfloat16, mx.bfloat16, 8e-2),
        (mx.float16, mx.float32, 1e-5),  # half operands, float accumulator (as llama.cpp does)
        (mx.bfloat16, mx.float32, 1e-5),
    ],
)
def test_products_match_numpy(element: mx.Dtype, accumulator: mx.Dtype, tolerance: float):
    got, expected = _gemm(element, accumulator)
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize(("transposed_b", "transposed_out"), [(True, False), (False, True), (True, True)])
def test_transposed_loads_and_stores_with_origins(transposed_b: bool, transposed_out: bool):
    got, expected = _gemm(mx.float32, mx.float32, rows=16, depth=16, columns=24,
                          transposed_b=transposed_b, transposed_out=transposed_out)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


FRAGMENT = MetalKernel(
    name="emu_simdgroup_fragment",
    input_names=["m"],
    output_names=["elements", "diagonal", "filled"],
    source="""
    const uint lane = thread_index_in_simdgroup;
    simdgroup_float8x8 loaded;
    simdgroup_load(loaded, m);
    elements[2 * lane] = loaded.thread_elements()[0];
    elements[2 * lane + 1] = loaded.thread_elements()[1];
    simdgroup_float8x8 identity(3.0f);
    simdgroup_store(identity, diagonal);
    simdgroup_store(make_filled_simdgroup_matrix<float, 8, 8>(2.5f), filled);
    """,
)


def test_each_lane_holds_two_elements_of_a_row_and_constructors_fill_the_matrix():
    m = np.arange(64, dtype=np.float32)
    elements, diagonal, filled = FRAGMENT(
        inputs=[m], output_shapes=[(64,), (8, 8), (8, 8)], output_dtypes=[mx.float32] * 3,
        grid=(32, 1, 1), threadgroup=(32, 1, 1),
    )
    lanes = np.arange(32)
    quad = lanes // 4
    row = (quad & 4) + (lanes // 2) % 4
    column = (quad & 2) * 2 + (lanes % 2) * 2
    expected = np.stack([8 * row + column, 8 * row + column + 1], axis=1).reshape(-1)
    np.testing.assert_array_equal(np.array(elements), expected)
    np.testing.assert_array_equal(np.array(diagonal), 3.0 * np.eye(8, dtype=np.float32))
    np.testing.assert_array_equal(np.array(filled), np.full((8, 8), 2.5, np.float32))


def _collective_kernel(name: str, body: str) -> MetalKernel:
    return MetalKernel(
        name=name, input_names=["m"], output_names=["out"],
        source=f"""
        const uint lane = thread_index_in_simdgroup;
        simdgroup_float8x8 tile;
        {body}
        simdgroup_store(tile, out);
        """,
    )


@pytest.mark.parametrize(
    ("name", "body", "threads", "message"),
    [
        ("emu_simdgroup_divergent", "if (lane < 16) { simdgroup_load(tile, m); }", 32,
         r"simdgroup_load at .* is reached by 16 of the 32 lanes"),
        ("emu_simdgroup_partial", "simdgroup_load(tile, m);", 48,
         r"simdgroup_load at .* is reached by 16 of the 32 lanes"),
        ("emu_simdgroup_nonuniform", "simdgroup_load(tile, m + (lane % 2) * 8);", 32,
         r"simdgroup_load at .*pass different addresses"),
        ("emu_simdgroup_divergent_product",
         "simdgroup_load(tile, m);\n if (lane != 3) { simdgroup_multiply_accumulate(tile, tile, tile, tile); }",
         32, r"simdgroup_multiply_accumulate at .* is reached by 31 of the 32 lanes"),
    ],
)
def test_operations_not_reached_by_the_whole_simdgroup_are_errors(
    name: str, body: str, threads: int, message: str
):
    kernel = _collective_kernel(name, body)
    with pytest.raises(KernelExecutionError, match=message):
        kernel(inputs=[np.zeros(128, np.float32)], output_shapes=[(64,)], output_dtypes=[mx.float32],
               grid=(threads, 1, 1), threadgroup=(threads, 1, 1))
