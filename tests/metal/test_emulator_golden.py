"""Golden test: the emulator generates byte for byte the Metal text MLX itself generates.

MLX cannot run a custom kernel without Metal, but while `mx.export_function` traces it records
the kernel and, with `verbose=True`, prints the generated source to C++ std::cout. Run as a
script, this file does that for every case; the test runs it in a subprocess (so fd 1 is a
pipe) and compares each listing with `MetalKernel.generated_source`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import MetalCompileError, MetalKernel
from gpt_oss_desktop.metal.emulator.signature import verbose_listing

CASE_MARKER = "=== golden case: "


@dataclass(frozen=True)
class Case:
    """One `metal_kernel(...)` construction and the arguments of one call."""

    name: str
    input_names: list[str]
    output_names: list[str]
    source: str
    inputs: Callable[[], list[Any]]
    output_dtypes: list[mx.Dtype]
    header: str = ""
    atomic_outputs: bool = False
    template: list[tuple[str, Any]] | None = None
    construction: dict[str, Any] = field(default_factory=dict)

    def construct(self, factory: Callable[..., Any]) -> Any:
        return factory(
            name=self.name,
            input_names=self.input_names,
            output_names=self.output_names,
            source=self.source,
            header=self.header,
            atomic_outputs=self.atomic_outputs,
        )


CASES = [
    Case(
        # A comment that names x_ndim still adds the parameter: MLX searches substrings.
        name="plain",
        input_names=["x"],
        output_names=["y"],
        source="uint i = thread_position_in_grid.x; y[i] = x[i] * 2.0f; // x_ndim",
        inputs=lambda: [mx.arange(16, dtype=mx.float32)],
        output_dtypes=[mx.float32],
    ),
    Case(
        name="templated",
        input_names=["x", "scale", "table"],
        output_names=["y", "flags"],
        source=(
            "uint i = thread_position_in_grid.x;\n"
            "T v = x[elem_to_loc(i, x_shape, x_strides, x_ndim)];\n"
            "y[i] = v * N * scale + table[i % 3];\n"
            "flags[i] = B && i < threads_per_threadgroup.x;\n"
        ),
        inputs=lambda: [mx.zeros((4, 5), dtype=mx.float16), 2.0, mx.array([1, 2, 3], mx.int32)],
        output_dtypes=[mx.float16, mx.bool_],
        template=[("T", mx.float16), ("N", 4), ("B", True)],
    ),
    Case(
        name="atomic",
        input_names=["x"],
        output_names=["total", "count"],
        source=(
            "atomic_fetch_add_explicit(&total[0], x[thread_position_in_grid.x], "
            "memory_order_relaxed);\n"
            "atomic_fetch_add_explicit(&count[0], 1u, memory_order_relaxed);"
        ),
        inputs=lambda: [mx.ones((64,), dtype=mx.float32)],
        output_dtypes=[mx.float32, mx.uint32],
        atomic_outputs=True,
    ),
    Case(
        name="dtypes",
        input_names=["a", "b", "c", "d"],
        output_names=["out"],
        source="uint i = thread_position_in_grid.x; out[i] = a[i] + b[i] + c[i] + d[i];",
        inputs=lambda: [
            mx.zeros((16,), dtype=mx.bfloat16),
            mx.zeros((2, 8), dtype=mx.float16),
            np.zeros((9,), dtype=np.uint8),
            mx.zeros((5,), dtype=mx.uint32),
        ],
        output_dtypes=[mx.bfloat16],
    ),
    Case(
        name="attributes",
        input_names=["x"],
        output_names=["y"],
        header="#include <metal_stdlib>\nusing namespace metal;\nconstant float kScale = 0.5f;\n",
        source=(
            "uint lane = thread_index_in_simdgroup;\n"
            "uint sg = simdgroup_index_in_threadgroup;\n"
            "uint3 tg = threadgroup_position_in_grid;\n"
            "uint3 size = threads_per_threadgroup;\n"
            "y[thread_position_in_grid.x] = simd_sum(x[lane]) * kScale + sg + tg.x + size.x;\n"
        ),
        inputs=lambda: [mx.ones((32,), dtype=mx.float32)],
        output_dtypes=[mx.float32],
    ),
    Case(
        # Python scalars and a float64 numpy array convert as MLX converts them.
        name="scalars",
        input_names=["i", "big", "flag", "f64"],
        output_names=["y"],
        source="y[thread_position_in_grid.x] = i + big + flag + f64[0];",
        inputs=lambda: [3, 2**40, True, np.zeros((10,))],
        output_dtypes=[mx.float32],
    ),
    Case(
        # MLX's latent quirk: shape buffers, two outputs and no attribute close the parameter
        # list after the first output. The port reproduces that text too.
        name="quirk",
        input_names=["x"],
        output_names=["y", "z"],
        source="y[0] = x_ndim; z[0] = x_shape[0];",
        inputs=lambda: [mx.zeros((8,), dtype=mx.float32)],
        output_dtypes=[mx.float32, mx.float32],
    ),
]


def _print_mlx_listings(directory: str) -> None:
    """Traces every case through MLX's own metal_kernel with verbose=True."""
    for case in CASES:
        os.write(1, f"{CASE_MARKER}{case.name}\n".encode())
        kernel = case.construct(mx.fast.metal_kernel)
        inputs = case.inputs()

        def call(*_: mx.array, case: Case = case, kernel: Any = kernel, inputs: list = inputs):
            return kernel(
                inputs=inputs,
                output_shapes=[(4,)] * len(case.output_names),
                output_dtypes=case.output_dtypes,
                grid=(32, 1, 1),
                threadgroup=(32, 1, 1),
                template=case.template,
                init_value=0 if case.atomic_outputs else None,
                verbose=True,
            )

        mx.export_function(os.path.join(directory, f"{case.name}.mlxfn"), call, mx.zeros((1,)))


@pytest.fixture(scope="module")
def mlx_listings() -> dict[str, str]:
    """Each case's listing as MLX prints it, captured from the subprocess's fd 1."""
    result = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, check=True, timeout=300
    )
    listings = {}
    for chunk in result.stdout.split(CASE_MARKER)[1:]:
        name, _, listing = chunk.partition("\n")
        listings[name] = listing
    assert set(listings) == {case.name for case in CASES}, result.stderr
    return listings


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_generated_source_is_byte_identical_to_mlx(case: Case, mlx_listings: dict[str, str]):
    kernel = case.construct(MetalKernel)
    source = kernel.generated_source(
        inputs=case.inputs(), output_dtypes=case.output_dtypes, template=case.template
    )
    assert verbose_listing(case.name, source) == mlx_listings[case.name]


def test_mlx_listing_has_the_expected_shape(mlx_listings: dict[str, str]):
    """Guards the capture itself: the parts the cases were written to exercise are there."""
    templated = mlx_listings["templated"]
    assert "template <typename T, int N, bool B>" in templated
    assert "const constant float& scale" in templated
    assert "const constant int32_t* table" in templated
    assert "const constant int64_t* x_strides" in templated
    assert "decltype(custom_kernel_templated__float16_t_4_1_" in templated
    assert "device atomic<float>* total" in mlx_listings["atomic"]
    assert "const device bfloat16_t* a" in mlx_listings["dtypes"]
    assert "const constant uint32_t* d" in mlx_listings["dtypes"]
    assert "const constant int64_t& big" in mlx_listings["scalars"]
    assert "const device float* f64" in mlx_listings["scalars"]


def test_the_malformed_signature_of_mlx_is_refused_before_compiling():
    case = next(c for c in CASES if c.name == "quirk")
    kernel = case.construct(MetalKernel)
    with pytest.raises(MetalCompileError, match="malformed signature"):
        kernel(
            inputs=case.inputs(),
            output_shapes=[(1,), (1,)],
            output_dtypes=case.output_dtypes,
            grid=(1, 1, 1),
            threadgroup=(1, 1, 1),
        )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as export_dir:
        _print_mlx_listings(export_dir)
