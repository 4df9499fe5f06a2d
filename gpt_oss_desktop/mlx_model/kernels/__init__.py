"""One entry point per kernel; the backend is picked here and nowhere else.

`reference` runs the MLX-op twins (any device); `metal` runs the custom kernels of `metal/`
through `mx.fast.metal_kernel` (Apple GPUs); `emulator` runs the same Metal source on the CPU
through `metal.emulator` (tests on Linux). The default is `metal` where MLX has a Metal device,
else `reference`; the environment variable GPT_OSS_KERNELS overrides it for checks. Asking for
`metal` without a Metal device is an error, never a silent fallback.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from types import ModuleType
from typing import Literal

import mlx.core as mx

from . import reference
from .kernel_check import CACHE_FILE, KernelCheck, KernelVerdict, check_with_cache, run_checks
from .layout import EXPERT_TENSOR_NAMES, ExpertWeights
from .metal_kernels import MetalKernels
from .moe_cost import gpu_named

Backend = Literal["metal", "emulator", "reference"]
BACKENDS: tuple[str, ...] = ("metal", "emulator", "reference")


def default_backend() -> Backend:
    chosen = os.environ.get("GPT_OSS_KERNELS")
    if chosen:
        if chosen not in BACKENDS:
            raise ValueError(f"GPT_OSS_KERNELS={chosen!r}: expected one of {', '.join(BACKENDS)}")
        return chosen  # type: ignore[return-value]
    return "metal" if mx.metal.is_available() else "reference"


@functools.cache
def _custom_kernels(backend: str) -> MetalKernels:
    """The custom kernels built by one factory; kept so each kernel compiles once per process."""
    if backend == "metal":
        device = str(mx.metal.device_info().get("device_name", ""))
        return MetalKernels(mx.fast.metal_kernel, gpu=gpu_named(device))
    from gpt_oss_desktop.metal.emulator import MetalKernel

    return MetalKernels(MetalKernel)


def _implementation(backend: Backend | None) -> ModuleType | MetalKernels:
    backend = backend or default_backend()
    if backend == "reference":
        return reference
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "metal" and not mx.metal.is_available():
        raise RuntimeError(
            "kernel backend 'metal' needs MLX with a Metal GPU, and this MLX has none "
            "(mx.metal.is_available() is False); use 'emulator' to run the same kernels on the "
            "CPU, or 'reference' for the MLX-op twins"
        )
    return _custom_kernels(backend)


def self_check(
    backend: Backend | None = None, *, kernels: MetalKernels | None = None, cache: Path | None = None
) -> KernelCheck | None:
    """The load-time self-check: on the custom-kernel backends, the verdict cached for this
    (MLX, OS, GPU, kernel sources), else a fresh check; kernels that failed are replaced by their
    MLX twins for the rest of the process. None on the reference backend (nothing to check).
    `kernels` stands in for the process's own (tests: the emulator in Metal's place)."""
    backend = backend or default_backend()
    if backend == "reference":
        return None
    kernels = kernels or _implementation(backend)  # type: ignore[assignment]
    if cache is None:
        from gpt_oss_desktop.mlx_model import paths

        cache = paths.data_dir() / CACHE_FILE
    return check_with_cache(kernels, backend, cache)  # type: ignore[arg-type]


def check_kernels(backend: Backend | None = None) -> tuple[KernelVerdict, ...]:
    """Runs every kernel against its twin now, on `backend` (default: metal on a Mac, else the
    emulator), whatever is cached."""
    if backend is None:
        backend = "metal" if mx.metal.is_available() else "emulator"
    if backend == "reference":
        raise ValueError("the reference backend is the twins themselves: check 'metal' or 'emulator'")
    return run_checks(_implementation(backend))  # type: ignore[arg-type]


def moe(
    x: mx.array,
    indices: mx.array,
    weights: mx.array,
    experts: ExpertWeights,
    *,
    swiglu_limit: float,
    swiglu_alpha: float,
    backend: Backend | None = None,
) -> mx.array:
    """The routed experts: out[t] = Σ_k weights[t,k] · (W_down · SwiGLU(W_gate_up · x[t] + b) + b_down)
    with the experts `indices[t, k]`.

    x [T, H] (bfloat16 or float32); indices [T, k] uint32; weights [T, k]; `experts` in the
    checkpoint's own layout (see ExpertWeights): gate/linear rows interleaved, MXFP4 blocks as
    [E, N, K/8] uint32 (the Hub's uint8 blocks viewed as MLX mxfp4), [E, N, K/32] uint8 scales.
    The SwiGLU is gpt-oss's: gate clamped above at `swiglu_limit`, linear clamped to ±limit, +1
    on linear, sigmoid(swiglu_alpha · gate). Returns [T, H] in x's dtype. On the custom
    kernels, one token runs as per-token GEMVs, a few as GEMVs that read each chosen expert once
    for all its tokens, more as GEMMs grouped by expert, from the token count kernels.moe_cost
    projects for these experts (46 for gpt-oss-20b, 184 for gpt-oss-120b on the M2 Pro).
    """
    return _implementation(backend).moe(
        x, indices, weights, experts, swiglu_limit=swiglu_limit, swiglu_alpha=swiglu_alpha
    )


def attention(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    sinks: mx.array,
    *,
    scale: float,
    window: int | None,
    backend: Backend | None = None,
) -> mx.array:
    """Causal attention with sinks and GQA. q [B, Hq, L, D]; k, v [B, Hkv, S, D] in time order,
    ending at the last query (q and k, v may be strided views, as the caches return them);
    sinks [Hq], one logit per head that joins the softmax's denominator only; `scale` multiplies
    q · k; `window` keys including the current one, or None for full attention. Returns
    [B, Hq, L, D] in q's dtype. On the custom kernels, up to 8 queries run one threadgroup per
    query (long contexts split across threadgroups), more run as tiles that skip key blocks
    outside the window and above the causal diagonal.
    """
    return _implementation(backend).attention(q, k, v, sinks, scale=scale, window=window)


__all__ = [
    "BACKENDS", "Backend", "EXPERT_TENSOR_NAMES", "ExpertWeights", "KernelCheck", "KernelVerdict", "attention", "check_kernels",
    "default_backend", "moe", "self_check",
]
