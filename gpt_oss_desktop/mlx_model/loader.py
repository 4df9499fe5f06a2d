"""`load(folder)`: a checked Hub checkpoint → a ready MLX model, or a clear error and nothing.

How the weights are held is explicit in `LoadOptions`; README.md ("Memory") gives each option's
measured memory saving and quality cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .cache import KV_BITS
from .checkpoint import TensorLocation, locate_tensors
from .config import ModelConfig, ModelFolderError
from .model import Model
from .offload import MappedEmbedding, PagedExperts, read_rows

_EMBEDDING = "model.embed_tokens.weight"
_QUANTIZATION_GROUP = 64
_QUANTIZE_SLICE_ELEMENTS = 16 * 1024 * 1024


@dataclass(frozen=True)
class LoadOptions:
    """embedding: "mapped" reads only the rows a prompt touches from the shard (no quality cost);
    dense_bits: attention and unembedding weights in 16 (as published), 8 or 4 bits (affine,
    groups of 64); expert_budget_bytes: None keeps every expert resident, a number keeps that
    many bytes of experts resident and pages the rest from disk (same outputs, slower);
    kv_bits: the full-attention layers' KV cache in 16 bits (the model's dtype) or 8 (int8 with a
    scale per head and token: about half the memory at long contexts, KL cost in README.md)."""

    embedding: Literal["resident", "mapped"] = "mapped"
    dense_bits: Literal[16, 8, 4] = 16
    expert_budget_bytes: int | None = None
    kv_bits: Literal[16, 8] = 16

    def __post_init__(self) -> None:
        if self.embedding not in ("resident", "mapped"):
            raise ValueError(f"embedding must be 'resident' or 'mapped', not {self.embedding!r}")
        if self.dense_bits not in (16, 8, 4):
            raise ValueError(f"dense_bits must be 16, 8 or 4, not {self.dense_bits!r}")
        if self.expert_budget_bytes is not None and self.expert_budget_bytes <= 0:
            raise ValueError("expert_budget_bytes must be positive")
        if self.kv_bits not in KV_BITS:
            raise ValueError(f"kv_bits must be 16 or 8, not {self.kv_bits!r}")


def _is_dense_projection(path: str, module: nn.Module) -> bool:
    """Attention projections and the unembedding; the router stays exact (tiny, and a rounded
    router logit can flip which experts run)."""
    return isinstance(module, nn.Linear) and not path.endswith("router")


def _page_experts(model: Model, locations: dict[str, TensorLocation], budget: int, dtype: mx.Dtype) -> None:
    config = model.config
    for index, layer in enumerate(model.model.layers):
        prefix = f"model.layers.{index}.mlp.experts."
        parts = {name[len(prefix):]: location for name, location in locations.items() if name.startswith(prefix)}
        probe = PagedExperts(parts, slots=1, dtype=dtype)
        slots = budget // (probe.slot_bytes * config.num_hidden_layers)
        if slots < config.num_experts_per_tok:
            raise ModelFolderError(
                f"an expert budget of {budget} bytes leaves {slots} experts per layer resident; "
                f"each token needs {config.num_experts_per_tok}: raise the budget"
            )
        layer.mlp.experts = PagedExperts(parts, slots=slots, dtype=dtype)


def load(path: str | Path, dtype: mx.Dtype = mx.bfloat16, options: LoadOptions = LoadOptions()) -> Model:
    """Build the 20b or 120b model (or any shape) from config.json and load its weights.

    The MXFP4 experts are used as stored; the dense weights are cast to `dtype` (bfloat16 as
    published, float32 for exact comparisons). Every shard is checked before anything is read,
    and tensors are read lazily, layer by layer, so peak memory stays near the final size.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: no such model folder")
    config = ModelConfig.from_folder(folder)
    locations = locate_tensors(folder, config)
    weights: dict[str, mx.array] = {}
    for shard in sorted({location.file for location in locations.values()}):
        try:
            weights.update(mx.load(str(shard)))
        except (RuntimeError, ValueError) as error:
            raise ModelFolderError(f"{shard}: cannot be read by MLX ({error})") from error

    model = Model(config, kv_bits=options.kv_bits)
    if options.embedding == "mapped":
        model.model.embed_tokens = MappedEmbedding(locations[_EMBEDDING], dtype)
        del weights[_EMBEDDING]
    if options.expert_budget_bytes is not None:
        _page_experts(model, locations, options.expert_budget_bytes, dtype)
        weights = {name: value for name, value in weights.items() if ".mlp.experts." not in name}
    if options.dense_bits != 16:
        nn.quantize(model, group_size=_QUANTIZATION_GROUP, bits=options.dense_bits, class_predicate=_is_dense_projection)
        for path, module in model.named_modules():
            if isinstance(module, nn.QuantizedLinear):
                quantized = _quantized_from_disk(locations[f"{path}.weight"], options.dense_bits, dtype)
                weights.update(zip((f"{path}.weight", f"{path}.scales", f"{path}.biases"), quantized))
    model.load_weights(list(Model.sanitize(weights).items()), strict=True)
    if dtype != mx.bfloat16:
        model.cast_dense(dtype)
    for layer in model.model.layers:  # materialise one layer at a time: bounded peak memory
        mx.eval(layer.parameters())
    mx.eval(model.parameters())
    return model


def _quantized_from_disk(location: TensorLocation, bits: int, dtype: mx.Dtype) -> tuple[mx.array, ...]:
    """Quantize a bfloat16 weight slice by slice straight from the shard, so the whole
    bfloat16 tensor (the unembedding alone is 1.16 GB) is never resident beside the result."""
    out_dims, in_dims = location.spec.shape
    rows = max(1, _QUANTIZE_SLICE_ELEMENTS // in_dims)
    outputs: list[mx.array] = []
    for start in range(0, out_dims, rows):
        count = min(rows, out_dims - start)
        piece = mx.array(read_rows(location, start, count, np.uint16)).view(mx.bfloat16).astype(dtype)
        parts = mx.quantize(piece, _QUANTIZATION_GROUP, bits)
        if not outputs:  # allocate the results once, then fill them slice by slice in place
            outputs = [mx.zeros((out_dims, *part.shape[1:]), part.dtype) for part in parts]
        for output, part in zip(outputs, parts):
            output[start : start + rows] = part
        mx.eval(outputs)
    return tuple(outputs)
