"""The checkpoint's own expert layout, shared by every backend of the MoE kernel."""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx


@dataclass(frozen=True)
class ExpertWeights:
    """One layer's experts as stored on the Hub, viewed the way MLX's mxfp4 mode reads them.

    gate_up_*: the first projection with gate and linear rows interleaved (even rows are the gate,
    odd rows the linear half), [E, 2I, H/8] uint32 blocks (eight 4-bit values a word, low nibble
    first), [E, 2I, H/32] uint8 E8M0 scales and an [E, 2I] bias. down_*: [E, H, I/8], [E, H, I/32]
    and [E, H]. Nothing is de-interleaved or re-quantized.
    """

    gate_up_blocks: mx.array
    gate_up_scales: mx.array
    gate_up_bias: mx.array
    down_blocks: mx.array
    down_scales: mx.array
    down_bias: mx.array

    @property
    def num_experts(self) -> int:
        return self.gate_up_blocks.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.down_blocks.shape[1]

    @property
    def intermediate_size(self) -> int:
        return self.gate_up_blocks.shape[1] // 2
