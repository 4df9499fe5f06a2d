"""Turning next-token logits into a token: temperature, top-k, top-p, min-p and a seed.

OpenAI recommends temperature 1.0 and top_p 1.0 for gpt-oss (plain sampling), so those are the
defaults; temperature 0 means greedy. Filters compose in the order llama.cpp and mlx-lm use:
top-k, then top-p, then min-p, each on the temperature-scaled distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    max_new_tokens: int = 4096
    # Tokens the model may spend before its final answer; then the structured decoder closes the
    # reasoning and opens the final message (None: no limit).
    max_reasoning_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0 (0 turns it off)")
        if not 0 <= self.min_p < 1:
            raise ValueError("min_p must be in [0, 1)")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.max_reasoning_tokens is not None and self.max_reasoning_tokens < 0:
            raise ValueError("max_reasoning_tokens must be >= 0 (None turns it off)")


class Sampler:
    """Samples one token id from [vocab] logits; a seed makes a whole reply reproducible."""

    def __init__(self, settings: SamplingSettings) -> None:
        self.settings = settings
        self._key = mx.random.key(settings.seed) if settings.seed is not None else None

    def __call__(self, logits: mx.array) -> mx.array:
        """Returns a 0-d uint32 array (lazy, so decoding can be pipelined)."""
        settings = self.settings
        logits = logits.astype(mx.float32)
        if settings.temperature == 0:
            return mx.argmax(logits, axis=-1).astype(mx.uint32)
        logprobs = logits / settings.temperature
        logprobs = logprobs - mx.logsumexp(logprobs, axis=-1, keepdims=True)
        masked = -float("inf")
        if 0 < settings.top_k < logprobs.shape[-1]:
            kth = mx.sort(logprobs, axis=-1)[..., -settings.top_k]
            logprobs = mx.where(logprobs < kth, masked, logprobs)
        if settings.top_p < 1:
            order = mx.argsort(-logprobs, axis=-1)
            sorted_probs = mx.exp(mx.take(logprobs, order, axis=-1))
            before = mx.cumsum(sorted_probs, axis=-1) - sorted_probs
            keep_sorted = before < settings.top_p  # always keeps the most likely token
            keep = mx.zeros_like(keep_sorted)
            keep[order] = keep_sorted
            logprobs = mx.where(keep, logprobs, masked)
        if settings.min_p > 0:
            threshold = mx.max(logprobs, axis=-1) + mx.log(mx.array(settings.min_p))
            logprobs = mx.where(logprobs < threshold, masked, logprobs)
        if self._key is None:
            token = mx.random.categorical(logprobs)
        else:
            self._key, step_key = mx.random.split(self._key)
            token = mx.random.categorical(logprobs, key=step_key)
        return token.astype(mx.uint32)
