"""Bad checkpoints fail with an error that names the file and the tensor, and return nothing."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from gpt_oss_desktop.mlx_model import ModelFolderError, load
from gpt_oss_desktop.mlx_model.checkpoint_writer import tiny_config, write_random_checkpoint


@pytest.fixture()
def checkpoint(tmp_path: Path, tiny_checkpoint: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    return folder


def shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("model-*.safetensors"))


def rewrite_header(path: Path, edit) -> None:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    edit(header)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + length :])


def test_missing_shard_is_named(checkpoint: Path) -> None:
    shards(checkpoint)[-1].unlink()
    with pytest.raises(ModelFolderError, match=r"shard model-00001-of-00001\.safetensors .* is missing"):
        load(checkpoint)


def test_truncated_shard_names_file_and_tensor(checkpoint: Path) -> None:
    last = shards(checkpoint)[-1]
    with last.open("r+b") as handle:
        handle.truncate(last.stat().st_size - 1000)
    with pytest.raises(ModelFolderError, match=rf"{last.name}: truncated: tensor model\.\S+ ends at byte"):
        load(checkpoint)


def test_file_that_is_not_safetensors(checkpoint: Path) -> None:
    shards(checkpoint)[0].write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ModelFolderError, match="not a safetensors file or truncated"):
        load(checkpoint)


def test_wrong_shape_names_tensor_and_expected_shape(checkpoint: Path) -> None:
    first = shards(checkpoint)[0]
    name = "lm_head.weight"

    def transpose(header: dict) -> None:
        header[name]["shape"] = list(reversed(header[name]["shape"]))

    rewrite_header(first, transpose)
    expected = rf"{first.name}: tensor lm_head\.weight is \[64, 201088\] BF16, config\.json implies \[201088, 64\] BF16"
    with pytest.raises(ModelFolderError, match=expected):
        load(checkpoint)


def test_wrong_dtype_names_tensor(checkpoint: Path) -> None:
    target = next(p for p in shards(checkpoint) if b"down_proj_scales" in p.read_bytes()[:20000])

    def to_int8(header: dict) -> None:
        name = next(k for k in header if k.endswith("down_proj_scales"))
        header[name]["dtype"] = "I8"

    rewrite_header(target, to_int8)
    with pytest.raises(ModelFolderError, match=r"down_proj_scales is \[8, 64, 2\] I8, config\.json implies \[8, 64, 2\] U8"):
        load(checkpoint)


def test_missing_tensor_is_named(checkpoint: Path) -> None:
    first = shards(checkpoint)[0]
    rewrite_header(first, lambda header: header.pop("lm_head.weight"))
    with pytest.raises(ModelFolderError, match="tensor lm_head.weight is missing"):
        load(checkpoint)


def test_config_that_disagrees_with_the_weights(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    config["num_local_experts"] = 32
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=r"tensor model\.layers\.0\.\S+ is \[8, .* implies \[32,"):
        load(checkpoint)


def test_unsupported_config_values(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    config["rope_scaling"]["rope_type"] = "linear"
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=r"config\.json: rope_scaling\.rope_type is 'linear'"):
        load(checkpoint)


def test_folder_of_another_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    with pytest.raises(ModelFolderError, match="model_type is 'llama', not 'gpt_oss'"):
        load(tmp_path)


def test_folder_without_config_or_weights(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with pytest.raises(ModelFolderError, match="no config.json"):
        load(tmp_path)
    shutil.copy(tiny_checkpoint / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelFolderError, match="no weights"):
        load(tmp_path)
    with pytest.raises(ModelFolderError, match="no such model folder"):
        load(tmp_path / "absent")


def test_foreign_tensor_in_a_gpt_oss_folder(tmp_path: Path) -> None:
    folder = write_random_checkpoint(tmp_path / "m", tiny_config(num_hidden_layers=2), shards=1, tokenizer=False)
    rewrite_header(folder / "model.safetensors", lambda h: h.update({"model.vision_tower.weight": h["model.norm.weight"]}))
    with pytest.raises(ModelFolderError, match="unexpected tensor model.vision_tower.weight"):
        load(folder)
