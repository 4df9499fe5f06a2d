"""Memory options: each changes where weights live, and only the quantized one changes numbers."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model import ModelFolderError, load
from gpt_oss_desktop.mlx_model.forward import ForwardPass
from gpt_oss_desktop.mlx_model.loader import LoadOptions
from gpt_oss_desktop.mlx_model.offload import MappedEmbedding, PagedExperts
from gpt_oss_desktop.mlx_model.prompt_cache import PromptCache

RESIDENT = LoadOptions(embedding="resident")


@pytest.fixture(scope="module")
def tokens() -> mx.array:
    return mx.array(np.random.default_rng(12).integers(0, 200_000, size=(1, 70)))


def test_mapped_embedding_gives_identical_logits(tiny_checkpoint: Path, tokens: mx.array) -> None:
    resident = load(tiny_checkpoint, options=RESIDENT)
    mapped = load(tiny_checkpoint, options=LoadOptions(embedding="mapped"))
    assert isinstance(mapped.model.embed_tokens, MappedEmbedding)
    assert mx.array_equal(resident(tokens), mapped(tokens))
    assert mapped.parameter_bytes() == resident.parameter_bytes() - resident.model.embed_tokens.weight.nbytes


def slot_bytes(folder: Path, dtype: mx.Dtype = mx.bfloat16) -> int:
    options = LoadOptions(expert_budget_bytes=10**9)
    return load(folder, dtype=dtype, options=options).model.layers[0].mlp.experts.slot_bytes


@pytest.mark.parametrize("slots_per_layer", [4, 5])
def test_paged_experts_equal_the_resident_path_within_budget(
    tiny_checkpoint: Path, tokens: mx.array, slots_per_layer: int
) -> None:
    layers = 4
    budget = slot_bytes(tiny_checkpoint, mx.float32) * layers * slots_per_layer
    resident = load(tiny_checkpoint, dtype=mx.float32)
    paged = load(tiny_checkpoint, dtype=mx.float32, options=LoadOptions(expert_budget_bytes=budget))

    # A whole prompt at once (tokens split into runs that fit the pool) ...
    assert mx.array_equal(resident(tokens), paged(tokens))
    # ... and prefill then token-by-token decode.
    warm, cold = ForwardPass(resident, PromptCache(resident)), ForwardPass(paged, PromptCache(paged))
    expected, actual = warm.prefill(tokens[0, :40].tolist()).logits, cold.prefill(tokens[0, :40].tolist()).logits
    assert mx.array_equal(expected, actual)
    for token in tokens[0, 40:].tolist():
        assert mx.array_equal(warm.step(mx.array(token)), cold.step(mx.array(token)))
        warm.cache.record(token)
        cold.cache.record(token)

    pools = [layer.mlp.experts for layer in paged.model.layers]
    assert all(isinstance(pool, PagedExperts) and pool.slots == slots_per_layer for pool in pools)
    assert sum(pool.resident_bytes for pool in pools) <= budget
    stats = [pool.stats for pool in pools]
    assert all(s.misses > 0 and s.hits > 0 for s in stats)
    assert all(0 < s.hit_rate < 1 for s in stats)


def test_budget_below_one_token_of_experts_is_refused(tiny_checkpoint: Path) -> None:
    with pytest.raises(ModelFolderError, match="leaves 3 experts per layer resident; each token needs 4"):
        load(tiny_checkpoint, options=LoadOptions(expert_budget_bytes=slot_bytes(tiny_checkpoint) * 4 * 3))


def next_token_kl(exact: mx.array, approximate: mx.array) -> float:
    """Mean KL(exact ‖ approximate) of the next-token distributions."""
    log_p = exact.astype(mx.float32) - mx.logsumexp(exact.astype(mx.float32), axis=-1, keepdims=True)
    log_q = approximate.astype(mx.float32) - mx.logsumexp(approximate.astype(mx.float32), axis=-1, keepdims=True)
    return mx.sum(mx.exp(log_p) * (log_p - log_q), axis=-1).mean().item()


def test_quantized_dense_weights_shrink_at_a_measured_cost(tiny_checkpoint: Path, tokens: mx.array) -> None:
    exact = load(tiny_checkpoint, options=RESIDENT)
    reference = exact(tokens)
    sizes, kls = {}, {}
    for bits in (8, 4):
        quantized = load(tiny_checkpoint, options=LoadOptions(embedding="resident", dense_bits=bits))
        sizes[bits] = quantized.parameter_bytes()
        kls[bits] = next_token_kl(reference, quantized(tokens))
    assert exact.parameter_bytes() > sizes[8] > sizes[4]
    # Measured on this random tiny model: about 0.06 nats at 8 bits and 0.5 at 4 (bench/quality.py).
    assert 0 < kls[8] < 0.25 and kls[8] < kls[4] < 2.0


@pytest.mark.parametrize("bad", [dict(embedding="disk"), dict(dense_bits=3), dict(expert_budget_bytes=0)])
def test_invalid_options(bad: dict) -> None:
    with pytest.raises(ValueError):
        LoadOptions(**bad)
