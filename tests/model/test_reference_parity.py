"""Logits from mlx_model in float32 against transformers' GptOssForCausalLM on the same folder."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model import load
from gpt_oss_desktop.mlx_model.config import ModelConfig

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-3  # of the largest reference logit


def reference_logits(folder: Path, tokens: np.ndarray) -> np.ndarray:
    model = transformers.GptOssForCausalLM.from_pretrained(
        folder, quantization_config=transformers.Mxfp4Config(dequantize=True), dtype=torch.float32
    ).eval()
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.numpy()


def assert_close_to_reference(ours: np.ndarray, reference: np.ndarray) -> None:
    scale = np.abs(reference).max()
    error = np.abs(ours - reference).max()
    assert error <= TOLERANCE * scale, f"max error {error:.3g} vs largest logit {scale:.3g}"


def test_logits_match_transformers(parity_checkpoint: Path) -> None:
    config = ModelConfig.from_folder(parity_checkpoint)
    length = 3 * config.sliding_window + 5  # well past the window
    tokens = np.random.default_rng(7).integers(0, 200_000, size=(2, length))
    ours = np.array(load(parity_checkpoint, dtype=mx.float32)(mx.array(tokens)))
    assert_close_to_reference(ours, reference_logits(parity_checkpoint, tokens))


def test_router_logits_are_large_where_asked(parity_checkpoint: Path) -> None:
    """Guards the 'large router logits' case: the test above must really route on big margins."""
    model = load(parity_checkpoint, dtype=mx.float32)
    router = model.model.layers[0].mlp.router.weight
    scale = float(mx.abs(router).max())
    config_text = json.loads((parity_checkpoint / "config.json").read_text())
    if config_text["num_local_experts"] == 16:
        assert scale > 3.0
    else:
        assert scale < 3.0


def _write_independent_checkpoint(folder: Path) -> None:
    """A Hub-layout checkpoint written without any of this project's code: transformers' own
    GptOssConfig, safetensors' own torch writer, MXFP4 packed here from the OCP MX rules."""
    from safetensors.torch import save_file

    config = transformers.GptOssConfig(
        num_hidden_layers=3, num_local_experts=6, num_experts_per_tok=2, hidden_size=64,
        intermediate_size=32, head_dim=16, num_attention_heads=4, num_key_value_heads=2,
        sliding_window=12, vocab_size=1000, max_position_embeddings=4096, pad_token_id=0, eos_token_id=1,
    )
    config_dict = config.to_dict()
    config_dict["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": []}
    config_dict["rope_scaling"] = config_dict.pop("rope_parameters")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config_dict))

    generator = torch.Generator().manual_seed(11)
    fp4_values = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])

    def pack_mxfp4(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        *lead, cols = dense.shape
        groups = dense.reshape(*lead, cols // 32, 32)
        exponent = torch.floor(torch.log2(groups.abs().amax(-1).clamp_min(1e-30))) - 2  # 6 = 1.5·2^2
        scaled = groups / torch.exp2(exponent)[..., None]
        nibbles = (scaled[..., None] - fp4_values).abs().argmin(-1).to(torch.uint8)
        blocks = nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)
        return blocks.contiguous(), (exponent + 127).to(torch.uint8).contiguous()

    def normal(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * scale).to(torch.bfloat16)

    h, i, e = 64, 32, 6
    tensors = {
        "model.embed_tokens.weight": normal(1000, h),
        "model.norm.weight": normal(h, scale=0.1) + 1,
        "lm_head.weight": normal(1000, h, scale=0.3),
    }
    for n in range(3):
        p = f"model.layers.{n}."
        tensors.update({
            p + "input_layernorm.weight": normal(h, scale=0.1) + 1,
            p + "post_attention_layernorm.weight": normal(h, scale=0.1) + 1,
            p + "self_attn.q_proj.weight": normal(64, h, scale=0.125), p + "self_attn.q_proj.bias": normal(64, scale=0.1),
            p + "self_attn.k_proj.weight": normal(32, h, scale=0.125), p + "self_attn.k_proj.bias": normal(32, scale=0.1),
            p + "self_attn.v_proj.weight": normal(32, h, scale=0.125), p + "self_attn.v_proj.bias": normal(32, scale=0.1),
            p + "self_attn.o_proj.weight": normal(h, 64, scale=0.125), p + "self_attn.o_proj.bias": normal(h, scale=0.1),
            p + "self_attn.sinks": normal(4),
            p + "mlp.router.weight": normal(e, h, scale=0.3), p + "mlp.router.bias": normal(e, scale=0.1),
            p + "mlp.experts.gate_up_proj_bias": normal(e, 2 * i, scale=0.1),
            p + "mlp.experts.down_proj_bias": normal(e, h, scale=0.1),
        })
        for proj, shape in (("gate_up_proj", (e, 2 * i, h)), ("down_proj", (e, h, i))):
            blocks, scales = pack_mxfp4(torch.randn(*shape, generator=generator) * 0.15)
            tensors[p + f"mlp.experts.{proj}_blocks"] = blocks
            tensors[p + f"mlp.experts.{proj}_scales"] = scales
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_checkpoint_not_written_by_this_project_loads_and_matches(tmp_path: Path) -> None:
    folder = tmp_path / "independent"
    _write_independent_checkpoint(folder)
    tokens = np.random.default_rng(3).integers(0, 1000, size=(1, 40))
    ours = np.array(load(folder, dtype=mx.float32)(mx.array(tokens)))
    assert_close_to_reference(ours, reference_logits(folder, tokens))


def test_bfloat16_default_stays_close_to_float32(tiny_checkpoint: Path) -> None:
    tokens = mx.array(np.random.default_rng(5).integers(0, 200_000, size=(1, 24)))
    exact = load(tiny_checkpoint, dtype=mx.float32)(tokens)
    default = load(tiny_checkpoint)(tokens)
    assert default.dtype == mx.bfloat16
    agreement = mx.mean(mx.argmax(exact, -1) == mx.argmax(default.astype(mx.float32), -1)).item()
    assert agreement >= 0.9
