"""Host buffers for kernel inputs and outputs, converted the way MLX converts them."""

from __future__ import annotations

from typing import Any, Sequence

import mlx.core as mx
import numpy as np

from gpt_oss_desktop.metal.emulator.errors import UnsupportedConstruct

# bfloat16 travels as its bit pattern; numpy has no bfloat16.
_HOST_DTYPES: dict[mx.Dtype, np.dtype] = {
    mx.bool_: np.dtype(np.bool_),
    mx.uint8: np.dtype(np.uint8),
    mx.uint16: np.dtype(np.uint16),
    mx.uint32: np.dtype(np.uint32),
    mx.uint64: np.dtype(np.uint64),
    mx.int8: np.dtype(np.int8),
    mx.int16: np.dtype(np.int16),
    mx.int32: np.dtype(np.int32),
    mx.int64: np.dtype(np.int64),
    mx.float16: np.dtype(np.float16),
    mx.bfloat16: np.dtype(np.uint16),
    mx.float32: np.dtype(np.float32),
}


def host_dtype(dtype: mx.Dtype, kernel: str) -> np.dtype:
    """The numpy dtype that holds `dtype`'s bytes; float64 and complex64 are rejected."""
    if dtype not in _HOST_DTYPES:
        raise UnsupportedConstruct(f"kernel {kernel!r}: {dtype} arrays are not supported on Metal")
    return _HOST_DTYPES[dtype]


def to_host(value: Any, kernel: str) -> tuple[np.ndarray, mx.Dtype]:
    """An input as MLX would receive it: its bytes as numpy, and its MLX dtype.

    mx.arrays keep their dtype and, like numpy arrays, their memory layout: a transposed or
    sliced view arrives with its strides, as MLX binds it to a kernel built with
    ensure_row_contiguous=False. numpy arrays get MLX's dtype (float64 becomes float32);
    Python scalars become 0-d arrays (int -> int32, float -> float32, bool -> bool).
    """
    if isinstance(value, np.ndarray):
        dtype = mx.array(np.empty((0,), dtype=value.dtype)).dtype
        host = host_dtype(dtype, kernel)
        return (value if value.dtype == host else value.astype(host)), dtype
    array = value if isinstance(value, mx.array) else mx.array(value)
    host = host_dtype(array.dtype, kernel)
    bits = array.view(mx.uint16) if array.dtype == mx.bfloat16 else array
    if bits.ndim == 0 or bits.size == 0:
        return np.array(bits, dtype=host), array.dtype
    mx.eval(bits)
    return np.asarray(memoryview(bits)).view(host), array.dtype


def is_row_contiguous(host: np.ndarray) -> bool:
    """Whether MLX would see this layout as row-contiguous (size-1 axes' strides ignored)."""
    return host.flags.c_contiguous


def new_output(
    shape: Sequence[int], dtype: mx.Dtype, init_value: float | None, kernel: str
) -> np.ndarray:
    """An output buffer: filled with `init_value`, or poisoned with 0xFF bytes like the
    uninitialised memory MLX hands a kernel (NaN for floating types)."""
    if init_value is not None:
        return to_host(mx.full(tuple(shape), init_value, dtype=dtype), kernel)[0]
    buffer = np.empty(tuple(shape), dtype=host_dtype(dtype, kernel))
    buffer.view(np.uint8).fill(0xFF)
    return buffer


def to_mlx(buffer: np.ndarray, dtype: mx.Dtype) -> mx.array:
    """An output buffer as the mx.array MLX would return."""
    array = mx.array(buffer)
    return array.view(mx.bfloat16) if dtype == mx.bfloat16 else array
