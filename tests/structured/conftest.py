"""A random tiny gpt-oss (its unconstrained output is noise) behind the real engine."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import pytest

from gpt_oss_desktop.mlx_model.checkpoint_writer import write_random_checkpoint
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.tokenizer import Tokenizer, load_tokenizer


@pytest.fixture(scope="session")
def real_tokenizer() -> Tokenizer:
    return load_tokenizer(None)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("random"), "tiny", seed=3)


@pytest.fixture(scope="module")
def engine(random_model_dir: Path) -> Engine:
    return Engine.load(random_model_dir, context_length=2048, dtype=mx.float32)
