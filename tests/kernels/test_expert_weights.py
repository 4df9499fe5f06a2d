"""ExpertWeights binds the six expert tensors by name: never by position, and from the
checkpoint's names each field gets the tensor of its own name."""

from __future__ import annotations

import mlx.core as mx
import pytest

from gpt_oss_desktop.mlx_model.kernels import EXPERT_TENSOR_NAMES, ExpertWeights


def test_the_fields_cannot_be_given_by_position() -> None:
    arrays = [mx.zeros((1,)) for _ in EXPERT_TENSOR_NAMES]
    with pytest.raises(TypeError):
        ExpertWeights(*arrays)


def test_from_the_checkpoint_each_field_gets_the_tensor_of_its_name() -> None:
    tensors = {name: mx.full((1,), index) for index, name in enumerate(EXPERT_TENSOR_NAMES)}
    weights = ExpertWeights.from_checkpoint(tensors)
    assert EXPERT_TENSOR_NAMES == ("gate_up_proj_blocks", "gate_up_proj_scales", "gate_up_proj_bias",
                                   "down_proj_blocks", "down_proj_scales", "down_proj_bias")
    assert [weights.gate_up_blocks.item(), weights.gate_up_scales.item(), weights.gate_up_bias.item(),
            weights.down_blocks.item(), weights.down_scales.item(), weights.down_bias.item()] == [0, 1, 2, 3, 4, 5]
