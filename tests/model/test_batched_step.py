"""A decode step of several sequences at once (forward.answer_steps: one forward pass, each row
attending to its own cache) gives each sequence the logits it gets alone, at different lengths,
past the sliding window, with small and large sinks, at 16 and 8 KV bits."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model import load
from gpt_oss_desktop.mlx_model.forward import ForwardPass, StepRequest, answer_steps
from gpt_oss_desktop.mlx_model.loader import LoadOptions
from gpt_oss_desktop.mlx_model.prompt_cache import PromptCache

LENGTHS = (3, 17, 40)  # the tiny window is 16: one inside it, two past it (one far past)
STEPS = 4


def close(actual: mx.array, expected: mx.array) -> bool:
    return mx.abs(actual - expected).max().item() <= 1e-4 * mx.abs(expected).max().item()


@pytest.mark.parametrize("kv_bits", [16, 8])
@pytest.mark.parametrize("sink_scale", [1.0, 6.0])
def test_a_batched_step_gives_each_sequence_its_own_logits(tiny_checkpoint: Path, kv_bits: int,
                                                           sink_scale: float) -> None:
    model = load(tiny_checkpoint, dtype=mx.float32, options=LoadOptions(kv_bits=kv_bits))
    for layer in model.model.layers:
        layer.self_attn.sinks = layer.self_attn.sinks * sink_scale
    rng = np.random.default_rng(7)
    sequences = [rng.integers(0, 200_000, size=n + STEPS).tolist() for n in LENGTHS]
    batched = [ForwardPass(model, PromptCache(model)) for _ in sequences]
    alone = [ForwardPass(model, PromptCache(model)) for _ in sequences]
    for tokens, together, single in zip(sequences, batched, alone):
        together.prefill(tokens[: -STEPS])
        single.prefill(tokens[: -STEPS])

    for step in range(STEPS):
        fed = [tokens[len(tokens) - STEPS + step] for tokens in sequences]
        requests = [StepRequest(forward.cache, mx.array(token, dtype=mx.uint32))
                    for forward, token in zip(batched, fed)]
        answer_steps(model, requests)
        for request, single, token in zip(requests, alone, fed):
            request.cache.record(token)
            assert close(request.answer(), single.step(mx.array(token, dtype=mx.uint32)))
            single.cache.record(token)

    for tokens, forward in zip(sequences, batched):
        assert forward.cache.tokens == tokens and all(layer.offset == len(tokens) for layer in forward.cache.layers)
    if kv_bits == 16:  # and against one forward pass over each whole sequence (no cache at all)
        for tokens, request in zip(sequences, requests):
            assert close(request.answer(), model(mx.array(tokens)[None])[0, -1])


def test_an_unanswered_step_is_refused(tiny_checkpoint: Path) -> None:
    model = load(tiny_checkpoint, dtype=mx.float32)
    with pytest.raises(RuntimeError, match="before it was run"):
        StepRequest(PromptCache(model), mx.array(1)).answer()
