"""Random checkpoints in the exact Hub layout of openai/gpt-oss-20b, for tests and benchmarks.

Weights cannot be downloaded here, so the project writes its own: the same config.json, tensor
names, dtypes, MXFP4 blocks and E8M0 scales, shards with an index, generation config and tokenizer
files as the published model, at any shape (tiny for tests, the real 20b and 120b for memory
benchmarks). Tensors are generated and written one at a time (expert tensors in slices), so a
65 GB 120b checkpoint needs little memory to write. A development tool (with `tokenizer_writer`):
nothing the app or the terminal chat runs imports it.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .checkpoint import INDEX_FILE, SINGLE_FILE, TensorSpec, expected_tensors
from .config import PUBLISHED, ModelConfig

if TYPE_CHECKING:
    from .model import Model

SHAPES: dict[str, ModelConfig] = {
    # Small enough for tests on a CPU; still GQA (group 4), more experts than top-k, and the real
    # vocabulary so the real tokenizer works with it.
    "tiny": ModelConfig(
        num_hidden_layers=4,
        num_local_experts=8,
        hidden_size=64,
        intermediate_size=64,
        head_dim=16,
        num_attention_heads=8,
        num_key_value_heads=2,
        sliding_window=16,
    ),
    "20b": PUBLISHED["openai/gpt-oss-20b"],
    "120b": PUBLISHED["openai/gpt-oss-120b"],
}

_GENERATION_CONFIG = {
    "bos_token_id": 199998,
    "do_sample": True,
    "eos_token_id": [200002, 199999, 200012],
    "pad_token_id": 199999,
    "transformers_version": "4.55.0.dev0",
}
_FP4_RMS = math.sqrt(sum(v * v for v in (0, 0.5, 1, 1.5, 2, 3, 4, 6)) / 8)
_SLICE_BYTES = 64 * 1024 * 1024


def to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16), rounding to nearest even."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


class _TensorSource:
    """Draws each tensor's random values; `router_scale` makes router logits large."""

    def __init__(self, config: ModelConfig, seed: int, router_scale: float) -> None:
        self.config = config
        self.seed = seed
        self.router_scale = router_scale

    def chunks(self, index: int, name: str, spec: TensorSpec) -> Iterator[bytes]:
        rng = np.random.default_rng([self.seed, index])
        if spec.dtype == "U8":
            yield from self._mxfp4_chunks(rng, name, spec)
            return
        yield to_bfloat16_bits(self._dense(rng, name, spec.shape)).tobytes()

    def _dense(self, rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
        hidden = self.config.hidden_size
        if name.endswith("norm.weight") or name == "model.norm.weight":
            return 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
        if name.endswith("sinks"):
            return 2.0 * rng.standard_normal(shape, dtype=np.float32)
        if name == "model.embed_tokens.weight":
            return rng.standard_normal(shape, dtype=np.float32)
        if name.endswith("bias"):
            return 0.1 * rng.standard_normal(shape, dtype=np.float32)
        fan_in = shape[-1]
        scale = 1.0 / math.sqrt(fan_in)
        if name.endswith("router.weight"):
            scale *= self.router_scale
        if name == "lm_head.weight":
            scale = 4.0 / math.sqrt(hidden)
        return scale * rng.standard_normal(shape, dtype=np.float32)

    def _mxfp4_chunks(self, rng: np.random.Generator, name: str, spec: TensorSpec) -> Iterator[bytes]:
        """Blocks are uniform random nibbles; scales put each row's RMS near 1/sqrt(fan_in)."""
        experts, rest = spec.shape[0], spec.shape[1:]
        per_expert = spec.nbytes // experts
        step = max(1, _SLICE_BYTES // per_expert)
        if name.endswith("_scales"):
            fan_in = rest[-1] * 32
            centre = 127 + round(math.log2(1.0 / (_FP4_RMS * math.sqrt(fan_in))))
        for first in range(0, experts, step):
            shape = (min(step, experts - first), *rest)
            if name.endswith("_blocks"):
                yield rng.integers(0, 256, size=shape, dtype=np.uint8).tobytes()
            else:
                yield rng.integers(centre - 1, centre + 2, size=shape, dtype=np.uint8).tobytes()


class _ArraySource:
    """Bytes of given arrays (a trained or converted model) instead of random ones."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def chunks(self, index: int, name: str, spec: TensorSpec) -> Iterator[bytes]:
        yield np.ascontiguousarray(self.arrays[name]).tobytes()


def _write_safetensors(
    path: Path, tensors: list[tuple[int, str, TensorSpec]], source: _TensorSource | _ArraySource | None
) -> None:
    """With no source the data is left as a hole: a sparse file of zeros, the right size."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for _, name, spec in tensors:
        header[name] = {"dtype": spec.dtype, "shape": list(spec.shape), "data_offsets": [offset, offset + spec.nbytes]}
        offset += spec.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        if source is None:
            handle.truncate(8 + len(encoded) + offset)
            return
        for index, name, spec in tensors:
            written = 0
            for chunk in source.chunks(index, name, spec):
                handle.write(chunk)
                written += len(chunk)
            assert written == spec.nbytes, f"{name}: wrote {written} of {spec.nbytes} bytes"


def write_random_checkpoint(
    folder: str | Path,
    config: ModelConfig | str = "tiny",
    *,
    seed: int = 0,
    shards: int = 2,
    router_scale: float = 1.0,
    tokenizer: bool = True,
) -> Path:
    """Write a random gpt-oss checkpoint in the Hub layout and return its folder.

    `config` is a ModelConfig or a name from SHAPES. With `shards` > 1 the tensors are split
    across `model-0000i-of-0000N.safetensors` files with a `model.safetensors.index.json`, as on
    the Hub; with 1 a single `model.safetensors` is written.
    """
    config = SHAPES[config] if isinstance(config, str) else config
    source = _TensorSource(config, seed, router_scale)
    return _write_checkpoint(Path(folder), config, source, shards=shards, tokenizer=tokenizer)


def write_sparse_checkpoint(folder: str | Path, config: ModelConfig | str, *, shards: int = 3) -> Path:
    """The Hub layout and file sizes of a checkpoint with every weight zero, in sparse files that
    take no disk: what memory estimates and header checks read, at the real 20b and 120b shapes."""
    config = SHAPES[config] if isinstance(config, str) else config
    return _write_checkpoint(Path(folder), config, None, shards=shards, tokenizer=False)


def save_model(model: "Model", folder: str | Path, *, shards: int = 1, tokenizer: bool = True) -> Path:
    """Write a model's current weights as a Hub-layout checkpoint (dense weights in bfloat16,
    the MXFP4 experts byte for byte), e.g. after training a test model."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    specs = expected_tensors(model.config)
    arrays: dict[str, np.ndarray] = {}
    for name, value in tree_flatten(model.parameters()):
        spec = specs[name]
        if spec.dtype == "U8":
            arrays[name] = np.array(value.view(mx.uint8)).reshape(spec.shape)
        else:
            arrays[name] = np.array(value.astype(mx.bfloat16).view(mx.uint16))
    return _write_checkpoint(Path(folder), model.config, _ArraySource(arrays), shards=shards, tokenizer=tokenizer)


def _write_checkpoint(
    folder: Path, config: ModelConfig, source: _TensorSource | _ArraySource | None, *, shards: int, tokenizer: bool
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer:  # first: it is the step that can fail (it needs the o200k vocabulary)
        from .tokenizer_writer import write_tokenizer_files

        write_tokenizer_files(folder)
    specs = expected_tensors(config)
    ordered = [(index, name, spec) for index, (name, spec) in enumerate(sorted(specs.items()))]

    if shards <= 1:
        _write_safetensors(folder / SINGLE_FILE, ordered, source)
    else:
        total = sum(spec.nbytes for _, _, spec in ordered)
        budget = total / shards
        groups: list[list[tuple[int, str, TensorSpec]]] = [[]]
        filled = 0
        for entry in ordered:
            if filled >= budget * len(groups) and len(groups) < shards:
                groups.append([])
            groups[-1].append(entry)
            filled += entry[2].nbytes
        last = len(groups) - 1
        weight_map = {}
        for number, group in enumerate(groups):
            file_name = f"model-{number:05d}-of-{last:05d}.safetensors"
            _write_safetensors(folder / file_name, group, source)
            weight_map.update({name: file_name for _, name, _ in group})
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")

    (folder / "config.json").write_text(json.dumps(config.to_hub_dict(), indent=2) + "\n")
    (folder / "generation_config.json").write_text(json.dumps(_GENERATION_CONFIG, indent=2) + "\n")
    return folder


def tiny_config(**overrides: object) -> ModelConfig:
    """The tiny test shape with some fields changed (layer_types follow num_hidden_layers)."""
    return replace(SHAPES["tiny"], layer_types=(), **overrides)
