"""How much memory a model folder needs at a context length, and what context fits a machine.

Used before loading (the app's fit check, the engine's default context) so a model that will not
fit is refused with a clear message instead of swapping the machine to a halt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import TensorSpec, expected_tensors, locate_tensors
from .config import ModelConfig
from .loader import LoadOptions
from .units import GIB

# Buffers besides weights and KV: one prefill chunk's activations, the logits, MLX's allocator
# slack. Measured peaks on the tiny and 20b shapes sit well under this (see bench/memory.py).
RUNTIME_OVERHEAD_BYTES = GIB // 2
MIN_CONTEXT = 4096
# macOS lets the GPU wire about 2/3 of RAM up to 36 GB and about 3/4 above; use the same share.
_GPU_SHARE_SMALL, _GPU_SHARE_LARGE = 0.67, 0.75
EXACT_PAGING_MIN_SHARE = 0.5
"""fitting_options pages experts with the weights as published only while at least this share
of them stays resident; below it, most expert uses would read the disk and 8-bit weights come in."""


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.overhead_bytes


def _kv_bytes_per_token_and_layer(config: ModelConfig, kv_bits: int = 16, value_bytes: int = 2) -> int:
    """Keys and values of one token in one layer: `value_bytes` a value (bfloat16: 2), or at
    8 bits int8 plus a float32 scale per head (the 8-bit cache, kernels.QuantizedKV)."""
    per_head = value_bytes * config.head_dim if kv_bits == 16 else config.head_dim + 4
    return 2 * config.num_key_value_heads * per_head


def kv_bytes_per_token(config: ModelConfig, kv_bits: int = 16, value_bytes: int = 2) -> int:
    """What one more token of context costs: only the full-attention layers grow."""
    full_layers = sum(not sliding for sliding in config.sliding_layers)
    return full_layers * _kv_bytes_per_token_and_layer(config, kv_bits, value_bytes)


def kv_bytes(config: ModelConfig, context_length: int, kv_bits: int = 16, value_bytes: int = 2) -> int:
    """Keys and values of every full layer at `context_length` (at `kv_bits`), plus the window
    layers' share (never 8-bit: 128 keys each). `value_bytes`: the model's activation dtype's."""
    window_layers = sum(config.sliding_layers)
    window = min(config.sliding_window, context_length)
    return kv_bytes_per_token(config, kv_bits, value_bytes) * context_length + (
        window_layers * window * _kv_bytes_per_token_and_layer(config, 16, value_bytes)
    )


def _is_quantizable(name: str) -> bool:
    return name.endswith(("proj.weight", "lm_head.weight")) and ".mlp." not in name


def _experts_bytes(specs: dict[str, TensorSpec]) -> int:
    return sum(spec.nbytes for name, spec in specs.items() if ".mlp.experts." in name)


def experts_bytes(model: ModelSource) -> int:
    """All the experts' bytes (MXFP4 blocks, scales, biases): what an expert budget divides."""
    return _experts_bytes(_checkpoint_specs(model)[1])


def _resident_weights_bytes(specs: dict[str, TensorSpec], config: ModelConfig, options: LoadOptions) -> int:
    """What a load with `options` keeps in memory (bfloat16 compute dtype)."""
    total = 0
    for name, spec in specs.items():
        if name == "model.embed_tokens.weight" and options.embedding == "mapped":
            continue
        if ".mlp.experts." in name and options.expert_budget_bytes is not None:
            continue
        size = spec.nbytes
        if options.dense_bits != 16 and _is_quantizable(name):
            # affine groups of 64 carry a bfloat16 scale and bias each: 0.5 bit a weight
            size = int(size * (options.dense_bits + 0.5) / 16)
        total += size
    if options.expert_budget_bytes is not None:
        total += min(options.expert_budget_bytes, _experts_bytes(specs))
    return total


def resident_bytes(model: ModelSource, options: LoadOptions) -> int:
    """What a load of `model` with `options` keeps in memory (the rest stays on disk)."""
    config, specs = _checkpoint_specs(model)
    return _resident_weights_bytes(specs, config, options)


@dataclass(frozen=True)
class CheckpointTensors:
    """A model's config and the sizes of its tensors, read once for several figures."""

    config: ModelConfig
    specs: dict[str, TensorSpec]


ModelSource = str | Path | ModelConfig | CheckpointTensors
"""A model folder (its config and shard headers are read), a config alone, e.g. one of
config.PUBLISHED before it is downloaded (its tensors are the Hub layout's), or what
`checkpoint_tensors` read already."""


def checkpoint_tensors(source: ModelSource) -> CheckpointTensors:
    if isinstance(source, CheckpointTensors):
        return source
    if isinstance(source, ModelConfig):
        return CheckpointTensors(source, expected_tensors(source))
    config = ModelConfig.from_folder(source)
    return CheckpointTensors(config, {name: location.spec for name, location in locate_tensors(source, config).items()})


def _checkpoint_specs(source: ModelSource) -> tuple[ModelConfig, dict[str, TensorSpec]]:
    tensors = checkpoint_tensors(source)
    return tensors.config, tensors.specs


def _estimate(config: ModelConfig, specs: dict[str, TensorSpec], context_length: int, options: LoadOptions) -> MemoryEstimate:
    return MemoryEstimate(
        _resident_weights_bytes(specs, config, options),
        kv_bytes(config, context_length, options.kv_bits),
        RUNTIME_OVERHEAD_BYTES,
    )


def estimate(model: ModelSource, context_length: int, options: LoadOptions = LoadOptions()) -> MemoryEstimate:
    config, specs = _checkpoint_specs(model)
    return _estimate(config, specs, context_length, options)


def fitting_options(model: ModelSource, context_length: int, usable: int | None = None,
                    kv_bits: int | None = None) -> LoadOptions | None:
    """The least lossy options under which the model fits `usable` bytes, exact ones first:
    the defaults; else the experts paged from disk (exact, slower) if at least
    EXACT_PAGING_MIN_SHARE of them stay resident; else 8-bit dense weights; else 8-bit with the
    experts paged under what is left. Each step is tried with the 16-bit KV cache, then the
    8-bit one: 8-bit KV comes in only where it is the difference between that step fitting and
    not (`kv_bits` holds every step to the width a user chose). None when not even the last step
    fits."""
    usable = usable_memory_bytes() if usable is None else usable
    config, specs = _checkpoint_specs(model)
    experts = _experts_bytes(specs)
    expert_bytes = experts // (config.num_local_experts * config.num_hidden_layers)
    one_token = config.num_experts_per_tok * config.num_hidden_layers * expert_bytes

    def expert_budget(dense_bits: int, kv_bits: int) -> int:
        """What is left for experts beside everything else at `dense_bits` and `kv_bits`."""
        others = _estimate(config, specs, context_length, LoadOptions(dense_bits=dense_bits, kv_bits=kv_bits))
        return usable - (others.total_bytes - experts)

    def as_published(kv_bits: int) -> LoadOptions | None:
        options = LoadOptions(kv_bits=kv_bits)
        return options if _estimate(config, specs, context_length, options).total_bytes <= usable else None

    def exact_paging(kv_bits: int) -> LoadOptions | None:
        budget = expert_budget(16, kv_bits)
        enough = budget >= int(experts * EXACT_PAGING_MIN_SHARE)
        return LoadOptions(expert_budget_bytes=budget, kv_bits=kv_bits) if enough else None

    def rounded(kv_bits: int) -> LoadOptions | None:
        return LoadOptions(dense_bits=8, kv_bits=kv_bits) if expert_budget(8, kv_bits) >= experts else None

    def rounded_paging(kv_bits: int) -> LoadOptions | None:
        budget = expert_budget(8, kv_bits)
        return LoadOptions(dense_bits=8, expert_budget_bytes=budget, kv_bits=kv_bits) if budget >= one_token else None

    for step in (as_published, exact_paging, rounded, rounded_paging):
        for width in (16, 8) if kv_bits is None else (kv_bits,):
            options = step(width)
            if options is not None:
                return options
    return None


def total_memory_bytes() -> int:
    """Physical memory (macOS and Linux)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def usable_memory_bytes(total: int | None = None) -> int:
    """What a model may use: on Apple Silicon the GPU's default working-set limit."""
    total = total_memory_bytes() if total is None else total
    share = _GPU_SHARE_SMALL if total <= 36 * GIB else _GPU_SHARE_LARGE
    return int(total * share)


def longest_context(config: ModelConfig, weights: int, usable: int, kv_bits: int = 16) -> int:
    """The longest context (a multiple of 1024, at most the model's trained length) whose KV
    cache (at `kv_bits`) fits beside `weights` and the runtime overhead in `usable` bytes; 0
    when none does."""
    spare = usable - weights - RUNTIME_OVERHEAD_BYTES
    low, high = 0, config.max_position_embeddings // 1024
    while low < high:  # kv_bytes grows with the context: the last multiple of 1024 that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if kv_bytes(config, middle * 1024, kv_bits) <= spare else (low, middle - 1)
    return low * 1024


def default_context_length(config: ModelConfig, weights: int, usable: int | None = None, kv_bits: int = 16) -> int:
    """The longest context up to the model's trained length (131,072 for gpt-oss) whose KV cache
    fits beside the weights; 4k when even that does not fit (the fit check then warns)."""
    usable = usable_memory_bytes() if usable is None else usable
    return max(min(MIN_CONTEXT, config.max_position_embeddings), longest_context(config, weights, usable, kv_bits))
