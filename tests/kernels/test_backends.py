"""Backend selection, and the whole model on the emulated kernels against the reference path."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model import LoadOptions, kernels, load
from gpt_oss_desktop.mlx_model.checkpoint_writer import write_random_checkpoint
from gpt_oss_desktop.mlx_model.kernels import metal_kernels


@pytest.mark.skipif(mx.metal.is_available(), reason="this machine has Metal")
def test_metal_without_a_metal_gpu_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    q = mx.zeros((1, 2, 1, 16))
    with pytest.raises(RuntimeError, match="needs MLX with a Metal GPU"):
        kernels.attention(q, q, q, mx.zeros((2,)), scale=0.25, window=None, backend="metal")
    monkeypatch.setenv("GPT_OSS_KERNELS", "metal")
    with pytest.raises(RuntimeError, match="needs MLX with a Metal GPU"):
        kernels.attention(q, q, q, mx.zeros((2,)), scale=0.25, window=None)


def test_unknown_backends_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    q = mx.zeros((1, 2, 1, 16))
    with pytest.raises(ValueError, match="unknown kernel backend"):
        kernels.attention(q, q, q, mx.zeros((2,)), scale=0.25, window=None, backend="cuda")  # type: ignore
    monkeypatch.setenv("GPT_OSS_KERNELS", "gpu")
    with pytest.raises(ValueError, match="GPT_OSS_KERNELS='gpu'"):
        kernels.default_backend()


def test_the_three_backends_agree_on_one_call() -> None:
    """The same arguments run on `emulator` and `reference` (and `metal` on a Mac) alike."""
    rng = np.random.default_rng(0)
    q = mx.array(rng.standard_normal((1, 4, 3, 16)).astype(np.float32))
    k = mx.array(rng.standard_normal((1, 2, 20, 16)).astype(np.float32))
    sinks = mx.array(rng.standard_normal((4,)).astype(np.float32))
    backends = ["emulator", "reference"] + (["metal"] if mx.metal.is_available() else [])
    results = [kernels.attention(q, k, k, sinks, scale=0.25, window=8, backend=b) for b in backends]
    for result in results[1:]:
        np.testing.assert_allclose(np.array(result), np.array(results[0]), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 layers (sliding window 16 on even ones), GQA group 4, 8 experts of which 4 are routed."""
    return write_random_checkpoint(tmp_path_factory.mktemp("tiny"), "tiny", seed=1, tokenizer=False)


@pytest.mark.parametrize("kv_bits", [16, 8])
def test_model_logits_on_emulated_kernels_equal_the_reference(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, kv_bits: int
) -> None:
    """A 36-token prompt (grouped expert GEMMs, prefill attention past the window), then 5 tokens
    at once and 3 single tokens (expert GEMVs, decode attention) through the caches. The cost
    model never groups experts this small (dispatches outweigh their bytes), so the test groups
    from 32 tokens. With `kv_bits` 8 the attention kernels' 8-bit variants run."""
    monkeypatch.setattr(metal_kernels, "grouped_min_tokens", lambda shape, gpu: 32)
    grouped_calls: list[int] = []
    grouped = metal_kernels.MetalKernels.moe_grouped

    def counted(self: metal_kernels.MetalKernels, x: mx.array, *args, **kwargs) -> mx.array:
        grouped_calls.append(x.shape[0])
        return grouped(self, x, *args, **kwargs)

    monkeypatch.setattr(metal_kernels.MetalKernels, "moe_grouped", counted)
    model = load(tiny_checkpoint, dtype=mx.float32, options=LoadOptions(kv_bits=kv_bits))  # 8: int8 K/V kernels
    tokens = mx.array(np.random.default_rng(5).integers(0, 200_000, size=(1, 44)))

    def logits(backend: str) -> np.ndarray:
        monkeypatch.setenv("GPT_OSS_KERNELS", backend)
        cache = model.make_cache()
        pieces, start = [], 0
        for size in (36, 5, 1, 1, 1):
            pieces.append(np.array(model(tokens[:, start : start + size], cache=cache)))
            start += size
        return np.concatenate(pieces, axis=1)

    reference, emulated = logits("reference"), logits("emulator")
    assert grouped_calls == [36] * 4  # the prompt, in each of the 4 layers
    scale = np.abs(reference).max()
    assert np.abs(emulated - reference).max() <= 1e-5 * scale
