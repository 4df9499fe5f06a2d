"""The checkpoint's own expert layout, shared by every backend of the MoE kernel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import mlx.core as mx


@dataclass(frozen=True, kw_only=True)
class ExpertWeights:
    """One layer's experts as stored on the Hub, viewed the way MLX's mxfp4 mode reads them.

    gate_up_*: the first projection with gate and linear rows interleaved (even rows are the gate,
    odd rows the linear half), [E, 2I, H/8] uint32 blocks (eight 4-bit values a word, low nibble
    first), [E, 2I, H/32] uint8 E8M0 scales and an [E, 2I] bias. down_*: [E, H, I/8], [E, H, I/32]
    and [E, H]. Nothing is de-interleaved or re-quantized. Keyword-only: six arrays of similar
    shapes are bound to their fields by name, never by position.
    """

    gate_up_blocks: mx.array
    gate_up_scales: mx.array
    gate_up_bias: mx.array
    down_blocks: mx.array
    down_scales: mx.array
    down_bias: mx.array

    @classmethod
    def from_checkpoint(cls, tensors: Mapping[str, mx.array]) -> ExpertWeights:
        """From the checkpoint's names (`gate_up_proj_blocks`, …, `down_proj_bias`)."""
        return cls(**{part.name: tensors[checkpoint_name(part.name)] for part in fields(cls)})

    @property
    def num_experts(self) -> int:
        return self.gate_up_blocks.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.down_blocks.shape[1]

    @property
    def intermediate_size(self) -> int:
        return self.gate_up_blocks.shape[1] // 2


def checkpoint_name(field_name: str) -> str:
    """The checkpoint's name for an ExpertWeights field: `gate_up_blocks` → `gate_up_proj_blocks`."""
    projection, kind = field_name.rsplit("_", 1)
    return f"{projection}_proj_{kind}"


EXPERT_TENSOR_NAMES = tuple(checkpoint_name(part.name) for part in fields(ExpertWeights))
"""One layer's expert tensors under the checkpoint's names, in ExpertWeights' order."""


KV_QUANT_MAX = 127


@dataclass(frozen=True)
class QuantizedKV:
    """8-bit keys or values as the 8-bit KV cache holds them: int8 `values` [B, H, S, D] and one
    float32 `scale` per (batch, head, token) [B, H, S], x ≈ values · scale.

    Symmetric (no zero point): RoPE'd keys and values are signed and roughly centred per head,
    so a zero point buys little; without it a dequantised value is one multiply, done in
    registers as the attention kernels read K and V, and the scales cost 4 bytes per 64 values.
    """

    values: mx.array
    scales: mx.array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    @property
    def ndim(self) -> int:
        return self.values.ndim

    @property
    def dtype(self) -> mx.Dtype:
        return self.values.dtype

    def __getitem__(self, index: tuple) -> QuantizedKV:
        """Slices over (batch, head, token), as the attention twin takes key blocks."""
        return QuantizedKV(self.values[index], self.scales[index])

    def dequantize(self, dtype: mx.Dtype) -> mx.array:
        return (self.values.astype(mx.float32) * self.scales[..., None]).astype(dtype)


def quantize_kv(x: mx.array) -> QuantizedKV:
    """[B, H, S, D] → int8 values and a per-(head, token) scale max|x| / 127 (1 for a zero row);
    every value is within scale / 2 of its original."""
    peak = mx.abs(x.astype(mx.float32)).max(axis=-1)
    scales = mx.where(peak > 0, peak / KV_QUANT_MAX, 1.0)
    values = mx.clip(mx.round(x.astype(mx.float32) / scales[..., None]), -KV_QUANT_MAX, KV_QUANT_MAX)
    return QuantizedKV(values.astype(mx.int8), scales)
