"""`load(folder)`: a checked Hub checkpoint → a ready MLX model, or a clear error and nothing."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from .checkpoint import locate_tensors
from .config import ModelConfig, ModelFolderError
from .model import Model


def load(path: str | Path, dtype: mx.Dtype = mx.bfloat16) -> Model:
    """Build the 20b or 120b model (or any shape) from config.json and load its weights.

    The MXFP4 experts are used as stored; the dense weights are cast to `dtype` (bfloat16 as
    published, float32 for exact comparisons). Every shard is checked before anything is read.
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
    model = Model(config)
    model.load_weights(list(Model.sanitize(weights).items()), strict=True)
    if dtype != mx.bfloat16:
        model.cast_dense(dtype)
    mx.eval(model.parameters())
    return model
