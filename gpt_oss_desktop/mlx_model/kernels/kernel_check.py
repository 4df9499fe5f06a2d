"""The kernels' self-check: each custom kernel once on small random inputs against its MLX-op twin.

On a Mac this runs at the first load with the Metal backend, and again whenever the MLX version,
the OS version, the GPU or a kernel source changes (the verdict is cached per that key in the data
folder). A kernel that fails to compile or disagrees beyond its tolerance is replaced by its twin
for the process, and the failure is reported: never silently wrong answers. `gpt-oss-chat
--check-kernels` runs the same check on demand, on any backend (the emulator off a Mac).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import mlx.core as mx
import numpy as np

from . import reference
from .layout import ExpertWeights, quantize_kv
from .metal_kernels import KERNEL_SOURCES, MetalKernels

CACHE_FILE = "kernel-check.json"
SWIGLU = dict(swiglu_limit=7.0, swiglu_alpha=1.702)


@dataclass(frozen=True)
class KernelVerdict:
    """One kernel's check: `error` says why it failed (a compile error, an exception, too far
    from its twin); `max_error` is relative to the twin's largest value. `twin_failed`: the MLX
    twin itself raised, so the kernel could not be checked; it stays in use (its twin cannot
    stand in for it) and the failure is reported."""

    kernel: str
    passed: bool
    max_error: float
    tolerance: float
    kernel_seconds: float
    twin_seconds: float
    error: str = ""
    twin_failed: bool = False

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        text = (f"{self.kernel:<18} {verdict}  max error {self.max_error:.2e} (tolerance {self.tolerance:.0e})"
                f"  kernel {self.kernel_seconds * 1e3:.1f} ms, twin {self.twin_seconds * 1e3:.1f} ms")
        return text + (f"  [{self.error}]" if self.error else "")


@dataclass(frozen=True)
class KernelCheck:
    """The self-check's outcome for this process: which kernels run as their MLX twins."""

    key: str
    verdicts: tuple[KernelVerdict, ...]
    cached: bool

    @property
    def replaced(self) -> tuple[str, ...]:
        return replaced_kernels(self.verdicts)

    @property
    def unchecked(self) -> tuple[str, ...]:
        """Kernels whose MLX twin raised during the check: still in use, not verified."""
        return tuple(v.kernel for v in self.verdicts if v.twin_failed)

    def warning(self) -> str | None:
        """A one-line warning naming the kernels replaced by their twins and those that could
        not be checked, or None."""
        parts = []
        if self.replaced:
            parts.append(f"kernel self-check failed for {', '.join(self.replaced)}: running MLX's own "
                         "ops for them instead (slower, still correct)")
        for verdict in self.verdicts:
            if verdict.twin_failed:
                parts.append(f"{verdict.kernel} could not be checked ({verdict.error}); it runs unchecked")
        if not parts:
            return None
        return "; ".join(parts) + "; `gpt-oss-chat --check-kernels` shows details"


def replaced_kernels(verdicts: tuple[KernelVerdict, ...]) -> tuple[str, ...]:
    """The kernels to run as their twins: those that failed against a twin that works."""
    return tuple(v.kernel for v in verdicts if not v.passed and not v.twin_failed)


def _experts(rng: np.random.Generator, experts: int, hidden: int, intermediate: int) -> ExpertWeights:
    """Random MXFP4 experts whose first projection's outputs spread over a few units."""

    def mxfp4(rows: int, columns: int) -> tuple[mx.array, mx.array]:
        blocks = rng.integers(0, 2**32, size=(experts, rows, columns // 8), dtype=np.uint32)
        centre = 127 + round(math.log2(4.0 / (2.7 * math.sqrt(columns))))
        scales = rng.integers(centre - 1, centre + 2, size=(experts, rows, columns // 32), dtype=np.uint8)
        return mx.array(blocks), mx.array(scales)

    def bias(*shape: int) -> mx.array:
        return mx.array(rng.standard_normal(shape).astype(np.float32))

    gate_up_blocks, gate_up_scales = mxfp4(2 * intermediate, hidden)
    down_blocks, down_scales = mxfp4(hidden, intermediate)
    return ExpertWeights(gate_up_blocks=gate_up_blocks, gate_up_scales=gate_up_scales,
                         gate_up_bias=bias(experts, 2 * intermediate),
                         down_blocks=down_blocks, down_scales=down_scales, down_bias=bias(experts, hidden))


def _moe_case(tokens: int, dtype: mx.Dtype = mx.float32) -> Callable[[np.random.Generator], tuple[tuple, dict]]:
    def case(rng: np.random.Generator):
        experts, hidden, top_k = 4, 64, 2
        x = mx.array(rng.standard_normal((tokens, hidden)).astype(np.float32)).astype(dtype)
        indices = mx.array(np.stack([rng.permutation(experts)[:top_k] for _ in range(tokens)]).astype(np.uint32))
        weights = mx.softmax(mx.array(rng.standard_normal((tokens, top_k)).astype(np.float32)), axis=-1)
        args = (x, indices, weights.astype(dtype), _experts(rng, experts, hidden, 64))
        return args, SWIGLU
    return case


def _moe_in_float32(x: mx.array, indices: mx.array, weights: mx.array, experts: ExpertWeights,
                    **swiglu: float) -> mx.array:
    """The twin on the same (possibly bfloat16) values, computed in float32."""
    return reference.moe(x.astype(mx.float32), indices, weights.astype(mx.float32), experts, **swiglu)


def _attention_case(queries: int, keys: int, window: int | None, kv_bits: int = 16):
    """Random attention inputs; at `kv_bits` 8, K and V as the 8-bit cache holds them."""
    def case(rng: np.random.Generator):
        def normal(*shape: int) -> mx.array:
            return mx.array(rng.standard_normal(shape).astype(np.float32))
        k, v = normal(1, 2, keys, 16), normal(1, 2, keys, 16)
        if kv_bits == 8:
            k, v = quantize_kv(k), quantize_kv(v)
        return (normal(1, 4, queries, 16), k, v, normal(4)), dict(scale=0.25, window=window)
    return case


@dataclass(frozen=True)
class _Check:
    name: str
    inputs: Callable[[np.random.Generator], tuple[tuple, dict]]
    run: Callable[[MetalKernels, tuple, dict], mx.array]
    twin: Callable[..., mx.array]
    tolerance: float = 1e-4


CHECKS: tuple[_Check, ...] = (
    _Check("moe_decode", _moe_case(3), lambda k, a, kw: k.moe_decode(*a, **kw), reference.moe),
    _Check("moe_few_tokens", _moe_case(5), lambda k, a, kw: k.moe_few_tokens(*a, **kw), reference.moe),
    # bfloat16, as the model runs on a Mac: the grouped GEMMs stage it as bfloat16 (their other
    # variant, float, is the one the tests run most). One rounding of the output: 2^-9.
    _Check("moe_grouped", _moe_case(40, mx.bfloat16), lambda k, a, kw: k.moe_grouped(*a, **kw),
           _moe_in_float32, tolerance=1e-2),
    # 40 keys in runs of 16: three splits, so attention_decode_combine runs too.
    _Check("attention_decode", _attention_case(1, 40, None),
           lambda k, a, kw: k.attention_decode(*a, **kw, keys_per_split=16), reference.attention),
    _Check("attention_prefill", _attention_case(12, 20, 8),
           lambda k, a, kw: k.attention_prefill(*a, **kw), reference.attention),
    # The 8-bit KV variants (int8 K and V, a scale per token), against the twin dequantising.
    _Check("attention_decode_kv8", _attention_case(1, 40, None, kv_bits=8),
           lambda k, a, kw: k.attention_decode(*a, **kw, keys_per_split=16), reference.attention),
    _Check("attention_prefill_kv8", _attention_case(12, 20, 8, kv_bits=8),
           lambda k, a, kw: k.attention_prefill(*a, **kw), reference.attention),
)
CHECKED_KERNELS: tuple[str, ...] = tuple(check.name for check in CHECKS)


def _timed(function: Callable[[], mx.array]) -> tuple[mx.array, float]:
    start = time.perf_counter()
    result = function()
    mx.eval(result)
    return result, time.perf_counter() - start


def _described(error: Exception) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


def _verdict(check: _Check, kernels: MetalKernels, seed: int) -> KernelVerdict:
    args, keywords = check.inputs(np.random.default_rng(seed))
    try:
        expected, twin_seconds = _timed(lambda: check.twin(*args, **keywords))
    except Exception as error:  # the reference is broken: say so, and keep the kernel
        twin = f"{check.twin.__module__.rsplit('.', 1)[-1]}.{check.twin.__name__}"
        return KernelVerdict(check.name, False, math.inf, check.tolerance, 0.0, 0.0,
                             f"its MLX twin {twin} raised {_described(error)}", twin_failed=True)
    try:
        _timed(lambda: check.run(kernels, args, keywords))  # builds the kernels
        actual, kernel_seconds = _timed(lambda: check.run(kernels, args, keywords))
    except Exception as error:  # a compile error or any other failure replaces the kernel
        return KernelVerdict(check.name, False, math.inf, check.tolerance, 0.0, twin_seconds, _described(error))
    ours = np.array(actual.astype(mx.float32))
    theirs = np.array(expected.astype(mx.float32))
    scale = max(float(np.abs(theirs).max()), 1e-30)
    error = float(np.abs(ours - theirs).max()) / scale if np.isfinite(ours).all() else math.inf
    passed = ours.shape == theirs.shape and error <= check.tolerance
    why = "" if passed else f"differs from its MLX twin by {error:.2e} of its largest value"
    return KernelVerdict(check.name, passed, error, check.tolerance, kernel_seconds, twin_seconds, why)


def run_checks(kernels: MetalKernels, seed: int = 0) -> tuple[KernelVerdict, ...]:
    """Every kernel once against its twin (each built, then timed on a second call)."""
    return tuple(_verdict(check, kernels, seed) for check in CHECKS)


def source_hash(read_source: Callable[[str], str]) -> str:
    digest = hashlib.sha256()
    for file in sorted({f for source in KERNEL_SOURCES for f in source.files}):
        digest.update(file.encode() + b"\0" + read_source(file).encode() + b"\0")
    return digest.hexdigest()[:16]


def machine(backend: str) -> tuple[str, str]:
    """(OS version, GPU name) of what runs the kernels."""
    if backend == "metal":
        gpu = str(mx.metal.device_info().get("device_name", "unknown GPU"))
        return "macOS " + (platform.mac_ver()[0] or platform.release()), gpu
    return f"{platform.system()} {platform.release()}", "metal emulator"


def environment_key(backend: str, read_source: Callable[[str], str]) -> str:
    """(MLX version, OS version, GPU name, kernel source hash), as one string."""
    system, gpu = machine(backend)
    return f"mlx {mx.__version__} | {system} | {gpu} | kernels {source_hash(read_source)}"


def check_with_cache(kernels: MetalKernels, backend: str, cache: Path) -> KernelCheck:
    """The verdict cached for this environment, else a fresh check (then cached); the failed
    kernels are replaced by their twins in `kernels`."""
    key = environment_key(backend, kernels.read_source)
    try:
        stored = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    if not isinstance(stored, dict):
        stored = {}
    cached = key in stored
    if cached:
        try:
            verdicts = tuple(KernelVerdict(**entry) for entry in stored[key])
        except TypeError:  # written by another version: check again
            cached = False
    if not cached:
        verdicts = run_checks(kernels)
        stored[key] = [asdict(v) for v in verdicts]
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(".partial")
            partial.write_text(json.dumps(stored, indent=1), encoding="utf-8")
            partial.replace(cache)
        except OSError:
            pass  # an unwritable data folder only means checking again next time
    kernels.replaced = frozenset(replaced_kernels(verdicts))
    return KernelCheck(key, verdicts, cached)
