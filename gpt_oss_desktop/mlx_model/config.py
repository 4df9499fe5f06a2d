"""gpt-oss's configuration, read from the Hub's config.json and checked before any weight is read.

The 20b and 120b models differ only in layer and expert counts, so one dataclass describes both;
the checks reject what this port does not implement instead of computing something else.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class ModelFolderError(ValueError):
    """A model folder or checkpoint that cannot be loaded; the message names the file and why."""


@dataclass(frozen=True)
class YarnScaling:
    """YaRN RoPE scaling as gpt-oss uses it (`rope_scaling` / `rope_parameters` in config.json)."""

    factor: float = 32.0
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    original_max_position_embeddings: int = 4096
    truncate: bool = False


@dataclass(frozen=True)
class ModelConfig:
    num_hidden_layers: int = 24
    num_local_experts: int = 32
    num_experts_per_tok: int = 4
    hidden_size: int = 2880
    intermediate_size: int = 2880
    head_dim: int = 64
    num_attention_heads: int = 64
    num_key_value_heads: int = 8
    vocab_size: int = 201088
    sliding_window: int = 128
    swiglu_limit: float = 7.0
    swiglu_alpha: float = 1.702
    rope_theta: float = 150000.0
    rope_scaling: YarnScaling = field(default_factory=YarnScaling)
    max_position_embeddings: int = 131072
    rms_norm_eps: float = 1e-5
    layer_types: tuple[str, ...] = ()
    eos_token_id: int = 200002
    pad_token_id: int = 199999

    def __post_init__(self) -> None:
        if not self.layer_types:
            sliding_first = tuple(
                "sliding_attention" if i % 2 == 0 else "full_attention"
                for i in range(self.num_hidden_layers)
            )
            object.__setattr__(self, "layer_types", sliding_first)

    @property
    def sliding_layers(self) -> tuple[bool, ...]:
        return tuple(kind == "sliding_attention" for kind in self.layer_types)

    @property
    def mxfp4_blocks_per_row(self) -> int:
        """MXFP4 groups of 32 values along the hidden size (90 for 2880)."""
        return self.hidden_size // 32

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config.json") -> "ModelConfig":
        """Validate a Hub config.json dict; raise ModelFolderError naming the field on anything
        this port does not implement."""

        def fail(why: str) -> ModelFolderError:
            return ModelFolderError(f"{source}: {why}")

        model_type = raw.get("model_type")
        if model_type != "gpt_oss":
            raise fail(f"model_type is {model_type!r}, not 'gpt_oss': this is not a gpt-oss model")

        def integer(name: str, default: int) -> int:
            value = raw.get(name, default)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise fail(f"{name} must be a positive integer, got {value!r}")
            return value

        def number(name: str, default: float) -> float:
            value = raw.get(name, default)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise fail(f"{name} must be a positive number, got {value!r}")
            return float(value)

        rope = raw.get("rope_scaling") or raw.get("rope_parameters")
        if rope is None:
            raise fail("rope_scaling is missing: gpt-oss uses YaRN")
        rope_type = rope.get("rope_type", rope.get("type"))
        if rope_type != "yarn":
            raise fail(f"rope_scaling.rope_type is {rope_type!r}; only 'yarn' is supported")
        scaling = YarnScaling(
            factor=float(rope.get("factor", 32.0)),
            beta_fast=float(rope.get("beta_fast", 32.0)),
            beta_slow=float(rope.get("beta_slow", 1.0)),
            original_max_position_embeddings=int(rope.get("original_max_position_embeddings", 4096)),
            truncate=bool(rope.get("truncate", False)),
        )
        rope_theta = rope.get("rope_theta", raw.get("rope_theta", 150000.0))

        quantization = raw.get("quantization_config")
        if quantization is not None and quantization.get("quant_method") != "mxfp4":
            raise fail(
                f"quantization_config.quant_method is {quantization.get('quant_method')!r}; "
                "only the published MXFP4 checkpoint layout is supported"
            )
        if raw.get("tie_word_embeddings", False):
            raise fail("tie_word_embeddings is true; gpt-oss has a separate unembedding")
        if raw.get("attention_bias", True) is not True:
            raise fail("attention_bias must be true for gpt-oss")

        eos = raw.get("eos_token_id", 200002)
        config = cls(
            num_hidden_layers=integer("num_hidden_layers", 24),
            num_local_experts=integer("num_local_experts", raw.get("num_experts", 32)),
            num_experts_per_tok=integer("num_experts_per_tok", raw.get("experts_per_token", 4)),
            hidden_size=integer("hidden_size", 2880),
            intermediate_size=integer("intermediate_size", 2880),
            head_dim=integer("head_dim", 64),
            num_attention_heads=integer("num_attention_heads", 64),
            num_key_value_heads=integer("num_key_value_heads", 8),
            vocab_size=integer("vocab_size", 201088),
            sliding_window=integer("sliding_window", 128),
            swiglu_limit=number("swiglu_limit", 7.0),
            swiglu_alpha=number("swiglu_alpha", 1.702),
            rope_theta=float(rope_theta),
            rope_scaling=scaling,
            max_position_embeddings=integer("max_position_embeddings", 131072),
            rms_norm_eps=number("rms_norm_eps", 1e-5),
            layer_types=tuple(raw.get("layer_types") or ()),
            eos_token_id=eos[0] if isinstance(eos, list) else int(eos),
            pad_token_id=int(raw.get("pad_token_id") or 199999),
        )
        config._check(fail)
        return config

    def _check(self, fail) -> None:
        if self.num_attention_heads % self.num_key_value_heads:
            raise fail("num_attention_heads must be a multiple of num_key_value_heads")
        if self.num_experts_per_tok > self.num_local_experts:
            raise fail("num_experts_per_tok exceeds num_local_experts")
        if self.head_dim % 2:
            raise fail("head_dim must be even for rotary embeddings")
        for name in ("hidden_size", "intermediate_size"):
            if getattr(self, name) % 32:
                raise fail(f"{name} must be a multiple of 32 (the MXFP4 block size)")
        if len(self.layer_types) != self.num_hidden_layers:
            raise fail("layer_types must list one type per layer")
        unknown = set(self.layer_types) - {"sliding_attention", "full_attention"}
        if unknown:
            raise fail(f"unknown layer types {sorted(unknown)}")

    @classmethod
    def from_folder(cls, folder: str | Path) -> "ModelConfig":
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise ModelFolderError(f"{folder}: no config.json — not a Hugging Face model folder")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelFolderError(f"{path}: cannot be read as JSON ({error})") from error
        if not isinstance(raw, dict):
            raise ModelFolderError(f"{path}: expected a JSON object")
        return cls.from_dict(raw, source=str(path))

    def to_hub_dict(self) -> dict[str, Any]:
        """config.json as openai/gpt-oss-20b ships it (used by the checkpoint writer)."""
        return {
            "architectures": ["GptOssForCausalLM"],
            "attention_bias": True,
            "attention_dropout": 0.0,
            "eos_token_id": self.eos_token_id,
            "experts_per_token": self.num_experts_per_tok,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initial_context_length": self.rope_scaling.original_max_position_embeddings,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "layer_types": list(self.layer_types),
            "max_position_embeddings": self.max_position_embeddings,
            "model_type": "gpt_oss",
            "num_attention_heads": self.num_attention_heads,
            "num_experts_per_tok": self.num_experts_per_tok,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "num_local_experts": self.num_local_experts,
            "output_router_logits": False,
            "pad_token_id": self.pad_token_id,
            "quantization_config": {
                "modules_to_not_convert": [
                    "model.layers.*.self_attn",
                    "model.layers.*.mlp.router",
                    "model.embed_tokens",
                    "lm_head",
                ],
                "quant_method": "mxfp4",
            },
            "rms_norm_eps": self.rms_norm_eps,
            "rope_scaling": {"rope_type": "yarn", **asdict(self.rope_scaling)},
            "rope_theta": self.rope_theta,
            "router_aux_loss_coef": 0.9,
            "sliding_window": self.sliding_window,
            "swiglu_limit": self.swiglu_limit,
            "tie_word_embeddings": False,
            "transformers_version": "4.55.0.dev0",
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }


PUBLISHED: dict[str, ModelConfig] = {
    "openai/gpt-oss-20b": ModelConfig(num_hidden_layers=24, num_local_experts=32),
    "openai/gpt-oss-120b": ModelConfig(num_hidden_layers=36, num_local_experts=128),
}
"""The published models' configs (the defaults are gpt-oss-20b's widths), for sizing a model
before it is downloaded and for writing random checkpoints of the real shapes."""


def yarn_inverse_frequencies(config: ModelConfig) -> tuple[list[float], float]:
    """The reference's YaRN inverse frequencies and concentration (gpt_oss/torch/model.py).

    The correction range is left unrounded unless config says `truncate`, which gpt-oss does not;
    mlx-lm rounds it, which moves the frequencies on the ramp by up to ~76%.
    """
    scaling = config.rope_scaling
    base, dims = config.rope_theta, config.head_dim
    half = dims // 2
    context = scaling.original_max_position_embeddings

    def correction_dim(beta: float) -> float:
        return half * math.log(context / (beta * 2 * math.pi)) / math.log(base)

    low, high = correction_dim(scaling.beta_fast), correction_dim(scaling.beta_slow)
    if scaling.truncate:
        low, high = math.floor(low), math.ceil(high)
    if high == low:
        high += 0.001  # as the reference does, to avoid dividing by zero
    inverse = []
    for i in range(half):
        freq = base ** (2 * i / dims)
        ramp = min(max((i - low) / (high - low), 0.0), 1.0)
        extrapolation_weight = 1.0 - ramp
        interpolation = 1.0 / (scaling.factor * freq)
        extrapolation = 1.0 / freq
        inverse.append(interpolation * (1 - extrapolation_weight) + extrapolation * extrapolation_weight)
    concentration = 0.1 * math.log(scaling.factor) + 1.0
    return inverse, concentration
