"""One entry point per kernel; the backend is picked here and nowhere else.

`reference` runs the MLX-op twins (any device); `metal` runs the custom kernels through
`mx.fast.metal_kernel` (Apple GPUs); `emulator` runs the same Metal source on the CPU through
`metal.emulator` (tests on Linux). The default is `metal` where MLX has a Metal device, else
`reference`; the environment variable GPT_OSS_KERNELS overrides it for checks.
"""

from __future__ import annotations

import os
from typing import Literal

import mlx.core as mx

from . import reference
from .layout import ExpertWeights

Backend = Literal["metal", "emulator", "reference"]
BACKENDS: tuple[str, ...] = ("metal", "emulator", "reference")


def default_backend() -> Backend:
    chosen = os.environ.get("GPT_OSS_KERNELS")
    if chosen:
        if chosen not in BACKENDS:
            raise ValueError(f"GPT_OSS_KERNELS={chosen!r}: expected one of {', '.join(BACKENDS)}")
        return chosen  # type: ignore[return-value]
    return "metal" if mx.metal.is_available() else "reference"


def _implementation(backend: Backend | None):
    backend = backend or default_backend()
    if backend == "reference":
        return reference
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    raise NotImplementedError(f"the {backend} kernels are not built yet")


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
    """The routed experts for [T, H] tokens: each token's top-k `indices` [T, k] and routing
    `weights` [T, k]; returns [T, H] = Σ_k w · (down(SwiGLU(gate_up(x) + b)) + b_down)."""
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
    ending at the last query; sinks [Hq]; `window` keys including the current one, or None for
    full attention. Returns [B, Hq, L, D]."""
    return _implementation(backend).attention(q, k, v, sinks, scale=scale, window=window)


__all__ = ["BACKENDS", "Backend", "ExpertWeights", "attention", "default_backend", "moe"]
