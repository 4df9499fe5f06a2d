"""The `metal` backend's own code path on Linux: MLX accepts every kernel call MetalKernels makes
with `mx.fast.metal_kernel`, and generates the very Metal text the emulator compiles.

MLX cannot run a custom kernel without Metal, but while `mx.export_function` traces one it
records the call and, with verbose=True, prints the generated source. Run as a script, this file
traces each entry point on `MetalKernels(mx.fast.metal_kernel)`; the test runs it in a subprocess
and compares each listing with the emulator's text for the same calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any, Callable

import mlx.core as mx
import numpy as np
import pytest
from kernel_inputs import normal, random_experts

from gpt_oss_desktop.metal.emulator import MetalKernel
from gpt_oss_desktop.metal.emulator.signature import verbose_listing
from gpt_oss_desktop.mlx_model.kernels.metal_kernels import MetalKernels

ENTRY_MARKER = "=== metal path: "
SWIGLU = dict(swiglu_limit=7.0, swiglu_alpha=1.702)


def _moe_inputs(tokens: int, dtype: mx.Dtype) -> tuple:
    rng = np.random.default_rng(tokens)
    experts = random_experts(rng, 8, 64, 96, dtype, spread=4.0)
    indices = mx.array(np.stack([rng.permutation(8)[:4] for _ in range(tokens)]).astype(np.uint32))
    weights = mx.softmax(normal(rng, (tokens, 4), mx.float32), axis=-1).astype(dtype)
    return normal(rng, (tokens, 64), dtype), indices, weights, experts


def _attention_inputs(queries: int, keys: int, dtype: mx.Dtype) -> tuple:
    rng = np.random.default_rng(keys)
    return (normal(rng, (1, 8, queries, 16), dtype), normal(rng, (1, 2, keys, 16), dtype),
            normal(rng, (1, 2, keys, 16), dtype), normal(rng, (8,), dtype))


# Every kernel, in both dtypes where the source is templated on them.
ENTRY_POINTS: dict[str, Callable[[MetalKernels], mx.array]] = {
    "moe_decode_bf16": lambda k: k.moe_decode(*_moe_inputs(3, mx.bfloat16), **SWIGLU),
    "moe_few_tokens_bf16": lambda k: k.moe_few_tokens(*_moe_inputs(5, mx.bfloat16), **SWIGLU),
    "moe_few_tokens_f32": lambda k: k.moe_few_tokens(*_moe_inputs(2, mx.float32), **SWIGLU),
    "moe_grouped_f32": lambda k: k.moe_grouped(*_moe_inputs(40, mx.float32), **SWIGLU),
    "attention_decode_split_bf16": lambda k: k.attention_decode(
        *_attention_inputs(1, 70, mx.bfloat16), scale=0.25, window=None, keys_per_split=16
    ),
    "attention_decode_window_f32": lambda k: k.attention_decode(
        *_attention_inputs(2, 40, mx.float32), scale=0.25, window=16
    ),
    "attention_prefill_bf16": lambda k: k.attention_prefill(
        *_attention_inputs(20, 30, mx.bfloat16), scale=0.25, window=16
    ),
}


def _print_mlx_listings(directory: str) -> None:
    """Traces every entry point on MLX's own metal_kernel, each call with verbose=True."""

    def verbose_metal_kernel(**construction: Any):
        kernel = mx.fast.metal_kernel(**construction)
        return lambda **call: kernel(**call, verbose=True)

    kernels = MetalKernels(verbose_metal_kernel)
    for name, entry in ENTRY_POINTS.items():
        os.write(1, f"{ENTRY_MARKER}{name}\n".encode())
        mx.export_function(os.path.join(directory, f"{name}.mlxfn"), lambda _: entry(kernels), mx.zeros((1,)))  # noqa: B023 (traced at once)


class _ListingKernel(MetalKernel):
    """The emulator's kernel, noting the text of every call as verbose=True prints it."""

    listings: list[str] = []

    def __call__(self, **call: Any) -> list[mx.array]:
        source = self.generated_source(
            inputs=call["inputs"], output_dtypes=call["output_dtypes"], template=call.get("template")
        )
        self.listings.append(verbose_listing(self.name, source))
        return super().__call__(**call)


@pytest.fixture(scope="module")
def mlx_listings() -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    listings = {}
    for chunk in result.stdout.split(ENTRY_MARKER)[1:]:
        name, _, listing = chunk.partition("\n")
        listings[name] = listing
    assert set(listings) == set(ENTRY_POINTS), result.stderr
    return listings


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_mlx_generates_the_text_the_emulator_runs(entry: str, mlx_listings: dict[str, str]) -> None:
    _ListingKernel.listings = []
    ENTRY_POINTS[entry](MetalKernels(_ListingKernel))
    assert len(_ListingKernel.listings) >= 1
    assert "".join(_ListingKernel.listings) == mlx_listings[entry]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as export_dir:
        _print_mlx_listings(export_dir)
