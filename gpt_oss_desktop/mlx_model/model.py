"""gpt-oss (20b and 120b) in MLX, readable top to bottom beside OpenAI's torch reference.

Pre-norm residual blocks; attention with a learned sink per head, GQA, YaRN RoPE and a 128-key
sliding window on even layers; a top-4 MoE of MXFP4 experts with a clamped SwiGLU. The kernels
(attention, experts) are called through `mlx_model.kernels`, which picks Metal or the MLX-op twin.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from . import kernels
from .cache import KV_BITS, FullCache, LayerCache, WindowCache
from .config import ModelConfig, yarn_inverse_frequencies
from .kernels import ExpertWeights
from .offload import ExpertBatch


class RMSNorm(nn.Module):
    """RMSNorm computed in float32 (as the reference), returned in the input's dtype."""

    def __init__(self, dims: int, eps: float) -> None:
        super().__init__()
        self.weight = mx.ones((dims,))
        self.eps = eps

    def __call__(self, x: mx.array) -> mx.array:
        normed = mx.fast.rms_norm(x.astype(mx.float32), self.weight.astype(mx.float32), self.eps)
        return normed.astype(x.dtype)


class YarnRoPE(nn.Module):
    """Half-split rotary embedding with the reference's unrounded YaRN frequencies; the
    concentration (1.3466 for gpt-oss) scales both q and k, so logits gain its square."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        inverse, self.concentration = yarn_inverse_frequencies(config)
        self.dims = config.head_dim
        self._periods = 1.0 / mx.array(inverse, dtype=mx.float32)

    def __call__(self, x: mx.array, offset: int) -> mx.array:
        rotated = mx.fast.rope(
            x, self.dims, traditional=False, base=None, scale=1.0, offset=offset, freqs=self._periods
        )
        return rotated * self.concentration


class RowCaches(tuple):
    """One layer's caches of several sequences, one per batch row: each row is one new token
    attending to its own cache at its own offset (the sequences' lengths differ)."""


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, sliding: bool) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.window = config.sliding_window if sliding else None
        hidden, q_dims = config.hidden_size, config.num_attention_heads * config.head_dim
        kv_dims = config.num_key_value_heads * config.head_dim
        self.q_proj = nn.Linear(hidden, q_dims, bias=True)
        self.k_proj = nn.Linear(hidden, kv_dims, bias=True)
        self.v_proj = nn.Linear(hidden, kv_dims, bias=True)
        self.o_proj = nn.Linear(q_dims, hidden, bias=True)
        self.sinks = mx.zeros((config.num_attention_heads,))
        self.rope = YarnRoPE(config)
        self.scale = 1.0 / math.sqrt(config.head_dim)

    def __call__(self, x: mx.array, cache: LayerCache | RowCaches | None, offset: int) -> mx.array:
        """`offset`: the position of x's first token, unless `cache` is RowCaches (each row's
        own cache says where it is)."""
        batch, length, _ = x.shape

        def heads(projected: mx.array, count: int) -> mx.array:
            return projected.reshape(batch, length, count, self.head_dim).transpose(0, 2, 1, 3)

        q = heads(self.q_proj(x), self.num_heads)
        k = heads(self.k_proj(x), self.num_kv_heads)
        v = heads(self.v_proj(x), self.num_kv_heads)
        if isinstance(cache, RowCaches):
            rows = [self._attend(q[r : r + 1], k[r : r + 1], v[r : r + 1], row, row.offset) for r, row in enumerate(cache)]
            out = rows[0] if len(rows) == 1 else mx.concatenate(rows)
        else:
            out = self._attend(q, k, v, cache, offset)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(batch, length, -1))

    def _attend(self, q: mx.array, k: mx.array, v: mx.array, cache: LayerCache | None, offset: int) -> mx.array:
        """Rotate the new queries and keys to their positions, append to the cache, attend."""
        q, k = self.rope(q, offset), self.rope(k, offset)
        if cache is not None:
            k, v = cache.update(k, v)
        return kernels.attention(q, k, v, self.sinks, scale=self.scale, window=self.window)


class Experts(nn.Module):
    """The checkpoint's MXFP4 expert tensors, held as MLX reads them (see kernels.ExpertWeights)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        e, h, i = config.num_local_experts, config.hidden_size, config.intermediate_size
        self.gate_up_proj_blocks = mx.zeros((e, 2 * i, h // 8), dtype=mx.uint32)
        self.gate_up_proj_scales = mx.zeros((e, 2 * i, h // 32), dtype=mx.uint8)
        self.gate_up_proj_bias = mx.zeros((e, 2 * i))
        self.down_proj_blocks = mx.zeros((e, h, i // 8), dtype=mx.uint32)
        self.down_proj_scales = mx.zeros((e, h, i // 32), dtype=mx.uint8)
        self.down_proj_bias = mx.zeros((e, h))

    @property
    def weights(self) -> ExpertWeights:
        return ExpertWeights(
            gate_up_blocks=self.gate_up_proj_blocks,
            gate_up_scales=self.gate_up_proj_scales,
            gate_up_bias=self.gate_up_proj_bias,
            down_blocks=self.down_proj_blocks,
            down_scales=self.down_proj_scales,
            down_bias=self.down_proj_bias,
        )

    def batches(self, indices: mx.array) -> Iterator[ExpertBatch]:
        """All experts are resident: every token in one batch (offload.PagedExperts splits)."""
        yield ExpertBatch(0, indices.shape[0], self.weights, indices)


class MoE(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.swiglu_limit = config.swiglu_limit
        self.swiglu_alpha = config.swiglu_alpha
        self.router = nn.Linear(config.hidden_size, config.num_local_experts, bias=True)
        self.experts = Experts(config)

    def __call__(self, x: mx.array) -> mx.array:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        logits = self.router(tokens)
        # Top-k of the biased logits first, then a softmax over just those k (the reference's order).
        indices = mx.stop_gradient(mx.argpartition(-logits, kth=self.top_k - 1, axis=-1)[:, : self.top_k])
        chosen = mx.take_along_axis(logits, indices, axis=-1)
        weights = mx.softmax(chosen.astype(mx.float32), axis=-1).astype(x.dtype)
        outputs = []
        for batch in self.experts.batches(indices):
            out = kernels.moe(
                tokens[batch.start : batch.stop],
                batch.indices.astype(mx.uint32),
                weights[batch.start : batch.stop],
                batch.weights,
                swiglu_limit=self.swiglu_limit,
                swiglu_alpha=self.swiglu_alpha,
            )
            if batch.stop < tokens.shape[0]:
                mx.eval(out)  # the next batch reloads the pool: keep one version of it alive
            outputs.append(out)
        out = outputs[0] if len(outputs) == 1 else mx.concatenate(outputs)
        return out.reshape(shape)


class Block(nn.Module):
    def __init__(self, config: ModelConfig, sliding: bool) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config, sliding)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MoE(config)

    def __call__(
        self, x: mx.array, cache: LayerCache | RowCaches | None, offset: int, last_only: bool = False
    ) -> mx.array:
        """`last_only`: every position's keys and values go to the cache, but only the last
        position continues through the MoE (a prefill needs just its last hidden state)."""
        x = x + self.self_attn(self.input_layernorm(x), cache, offset)
        if last_only:
            x = x[:, -1:]
        return x + self.mlp(self.post_attention_layernorm(x))


class GptOssModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = [Block(config, sliding) for sliding in config.sliding_layers]
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class Model(nn.Module):
    """`Model(tokens)` → logits [B, L, vocab]; `Model(tokens, cache=model.make_cache())` decodes
    incrementally, each call continuing where the cache ends."""

    def __init__(self, config: ModelConfig, kv_bits: int = 16) -> None:
        super().__init__()
        if kv_bits not in KV_BITS:
            raise ValueError(f"kv_bits must be 16 or 8, not {kv_bits!r}")
        self.config = config
        self.kv_bits = kv_bits  # the full-attention layers' caches (the sliding ones stay 16-bit)
        self.model = GptOssModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def __call__(self, tokens: mx.array, cache: list[LayerCache] | None = None) -> mx.array:
        return self.lm_head(self.hidden_states(tokens, cache))

    def hidden_states(
        self, tokens: mx.array, cache: list[LayerCache] | None = None, last_only: bool = False
    ) -> mx.array:
        """The final-normed hidden states; the engine unembeds only the positions it samples.
        With `last_only` only the last position's ([B, 1, H]) is computed past the last
        attention, which is what a prefill needs."""
        if tokens.ndim == 1:
            tokens = tokens[None]
        x = self.model.embed_tokens(tokens)
        offset = cache[0].offset if cache else 0
        last = len(self.model.layers) - 1
        for index, layer in enumerate(self.model.layers):
            x = layer(x, cache[index] if cache else None, offset, last_only and index == last)
        return self.model.norm(x)

    def decode_rows(self, tokens: mx.array, caches: Sequence[list[LayerCache]]) -> mx.array:
        """One new token for each of B sequences (`tokens` [B], `caches` each one's per-layer
        caches): the projections and the MoE run over the B rows at once, attention per row
        against its own cache. The final-normed hidden states, [B, H]."""
        x = self.model.embed_tokens(tokens[:, None])
        for index, layer in enumerate(self.model.layers):
            x = layer(x, RowCaches(sequence[index] for sequence in caches), 0)
        return self.model.norm(x)[:, 0]

    def make_cache(self) -> list[LayerCache]:
        return [
            WindowCache(self.config.sliding_window) if sliding else FullCache(self.kv_bits)
            for sliding in self.config.sliding_layers
        ]

    @staticmethod
    def sanitize(weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """Hub names and dtypes → this module's parameters. The only change: MXFP4 blocks
        [E, N, K/32, 16] uint8 are viewed as [E, N, K/8] uint32, MLX's mxfp4 layout (no copy)."""
        out = {}
        for name, value in weights.items():
            if name.endswith("_blocks"):
                value = value.view(mx.uint32).flatten(-2)
            out[name] = value
        return out

    def cast_dense(self, dtype: mx.Dtype) -> None:
        """Cast the floating-point parameters (everything but the MXFP4 blocks and scales)."""
        self.apply(lambda value: value.astype(dtype) if mx.issubdtype(value.dtype, mx.floating) else value)

    def parameter_bytes(self) -> int:
        return sum(value.nbytes for _, value in tree_flatten(self.parameters()))
