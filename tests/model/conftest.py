"""Random Hub-layout checkpoints, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt_oss_desktop.mlx_model.checkpoint_writer import tiny_config, write_random_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny shape: 4 layers, GQA group 4, 8 experts (top 4), a window of 16, 2 shards."""
    return write_random_checkpoint(tmp_path_factory.mktemp("tiny"), "tiny", seed=1, tokenizer=False)


# Shapes that each stress something the reference is particular about.
PARITY_CASES = {
    "gqa4-window16": dict(config=tiny_config(), seed=2, shards=2),
    "five-layers-gqa8-single-file": dict(
        config=tiny_config(num_hidden_layers=5, num_attention_heads=8, num_key_value_heads=1),
        seed=3,
        shards=1,
    ),
    "large-router-logits-16-experts": dict(
        config=tiny_config(num_local_experts=16, sliding_window=8), seed=4, shards=3, router_scale=40.0
    ),
    "real-window-128-wide-heads": dict(
        config=tiny_config(num_hidden_layers=3, head_dim=64, num_attention_heads=4, num_key_value_heads=2,
                           hidden_size=96, intermediate_size=128, sliding_window=128),
        seed=5,
        shards=2,
    ),
}


@pytest.fixture(scope="session", params=sorted(PARITY_CASES))
def parity_checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoint(
        tmp_path_factory.mktemp(request.param), tokenizer=False, **PARITY_CASES[request.param]
    )
