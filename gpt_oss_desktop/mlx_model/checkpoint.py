"""Reading a Hugging Face model folder laid out like openai/gpt-oss-20b, checked before it is used.

Every shard's header is read and checked against the tensors config.json implies (name, shape,
dtype, and that the bytes are really in the file) before any weight is loaded, so a truncated
download, a foreign checkpoint or a wrong shape fails with the file and tensor named instead of
half-loading.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from .config import ModelConfig, ModelFolderError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"

# safetensors dtype names and their sizes in bytes.
DTYPE_SIZES = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "I8": 1, "U32": 4, "I32": 4, "I64": 8, "F64": 8}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # safetensors name: "BF16" or "U8"

    @property
    def nbytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count * DTYPE_SIZES[self.dtype]


@dataclass(frozen=True)
class TensorLocation:
    file: Path
    spec: TensorSpec
    offset: int  # absolute byte offset of the data in the file


def expected_tensors(config: ModelConfig) -> dict[str, TensorSpec]:
    """Every tensor of the Hub root checkpoint with its shape and dtype, in the Hub's names."""
    hidden, inter, head = config.hidden_size, config.intermediate_size, config.head_dim
    experts, vocab = config.num_local_experts, config.vocab_size
    q_rows = config.num_attention_heads * head
    kv_rows = config.num_key_value_heads * head
    specs: dict[str, TensorSpec] = {
        "model.embed_tokens.weight": TensorSpec((vocab, hidden), "BF16"),
        "model.norm.weight": TensorSpec((hidden,), "BF16"),
        "lm_head.weight": TensorSpec((vocab, hidden), "BF16"),
    }
    for n in range(config.num_hidden_layers):
        p = f"model.layers.{n}."
        specs.update(
            {
                p + "input_layernorm.weight": TensorSpec((hidden,), "BF16"),
                p + "post_attention_layernorm.weight": TensorSpec((hidden,), "BF16"),
                p + "self_attn.q_proj.weight": TensorSpec((q_rows, hidden), "BF16"),
                p + "self_attn.q_proj.bias": TensorSpec((q_rows,), "BF16"),
                p + "self_attn.k_proj.weight": TensorSpec((kv_rows, hidden), "BF16"),
                p + "self_attn.k_proj.bias": TensorSpec((kv_rows,), "BF16"),
                p + "self_attn.v_proj.weight": TensorSpec((kv_rows, hidden), "BF16"),
                p + "self_attn.v_proj.bias": TensorSpec((kv_rows,), "BF16"),
                p + "self_attn.o_proj.weight": TensorSpec((hidden, q_rows), "BF16"),
                p + "self_attn.o_proj.bias": TensorSpec((hidden,), "BF16"),
                p + "self_attn.sinks": TensorSpec((config.num_attention_heads,), "BF16"),
                p + "mlp.router.weight": TensorSpec((experts, hidden), "BF16"),
                p + "mlp.router.bias": TensorSpec((experts,), "BF16"),
                p + "mlp.experts.gate_up_proj_blocks": TensorSpec((experts, 2 * inter, hidden // 32, 16), "U8"),
                p + "mlp.experts.gate_up_proj_scales": TensorSpec((experts, 2 * inter, hidden // 32), "U8"),
                p + "mlp.experts.gate_up_proj_bias": TensorSpec((experts, 2 * inter), "BF16"),
                p + "mlp.experts.down_proj_blocks": TensorSpec((experts, hidden, inter // 32, 16), "U8"),
                p + "mlp.experts.down_proj_scales": TensorSpec((experts, hidden, inter // 32), "U8"),
                p + "mlp.experts.down_proj_bias": TensorSpec((experts, hidden), "BF16"),
            }
        )
    return specs


def read_safetensors_header(path: Path) -> dict[str, TensorLocation]:
    """Parse one shard's header and check every tensor's bytes lie inside the file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ModelFolderError(f"{path}: truncated: shorter than a safetensors header")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > min(_MAX_HEADER_BYTES, size - 8):
                raise ModelFolderError(
                    f"{path}: not a safetensors file or truncated (header claims {header_len} bytes, "
                    f"file has {size})"
                )
            raw = handle.read(header_len)
    except OSError as error:
        raise ModelFolderError(f"{path}: cannot be read ({error})") from error
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFolderError(f"{path}: safetensors header is not valid JSON ({error})") from error
    data_start = 8 + header_len
    tensors: dict[str, TensorLocation] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFolderError(f"{path}: tensor {name}: malformed header entry") from error
        if dtype not in DTYPE_SIZES:
            raise ModelFolderError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        spec = TensorSpec(shape, dtype)
        if end - begin != spec.nbytes:
            raise ModelFolderError(
                f"{path}: tensor {name}: header says {end - begin} bytes, shape {list(shape)} "
                f"{dtype} needs {spec.nbytes}"
            )
        if data_start + end > size:
            raise ModelFolderError(
                f"{path}: truncated: tensor {name} ends at byte {data_start + end} but the file has "
                f"{size} bytes (an incomplete download?)"
            )
        tensors[name] = TensorLocation(path, spec, data_start + begin)
    return tensors


def shard_files(folder: Path) -> list[Path]:
    """The shards a model folder names: from the index when sharded, else model.safetensors."""
    index_path = folder / INDEX_FILE
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ModelFolderError(f"{index_path}: not a valid safetensors index ({error})") from error
        names = sorted(set(weight_map.values()))
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise ModelFolderError(
                f"{folder}: shard {missing[0]} named by {INDEX_FILE} is missing"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return [folder / name for name in names]
    single = folder / SINGLE_FILE
    if single.is_file():
        return [single]
    raise ModelFolderError(f"{folder}: neither {INDEX_FILE} nor {SINGLE_FILE} found: no weights")


def locate_tensors(folder: str | Path, config: ModelConfig) -> dict[str, TensorLocation]:
    """Check the whole checkpoint against config and return where each tensor lives."""
    folder = Path(folder)
    found: dict[str, TensorLocation] = {}
    for shard in shard_files(folder):
        found.update(read_safetensors_header(shard))
    expected = expected_tensors(config)
    for name, spec in expected.items():
        location = found.get(name)
        if location is None:
            raise ModelFolderError(f"{folder}: tensor {name} is missing from the checkpoint")
        if location.spec != spec:
            raise ModelFolderError(
                f"{location.file}: tensor {name} is {list(location.spec.shape)} {location.spec.dtype}, "
                f"config.json implies {list(spec.shape)} {spec.dtype}"
            )
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise ModelFolderError(
            f"{found[unexpected[0]].file}: unexpected tensor {unexpected[0]}"
            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            + ": not a gpt-oss checkpoint in the Hub layout"
        )
    return {name: found[name] for name in expected}
