"""What each memory option costs in quality: KL divergence of next-token distributions against
the published bfloat16 weights, on random prompts.

    python bench/quality.py --shape tiny
    python bench/quality.py --shape mid     # real widths (2880), 4 layers, 8 experts
    python bench/quality.py --model ~/models/gpt-oss-20b --length 64   # the real weights, on a Mac
    python bench/quality.py --shape tiny --kv-positions 8192,32768   # the 8-bit KV cache vs 16-bit

The KV comparison fills the caches with the first N - length positions of random keys and values
(as bench/memory.py does: a CPU cannot prefill 32k positions of a real shape in reasonable time),
the same values at 16 and 8 bits, then prefills `length` real tokens on top and compares their
next-token distributions.

The checkpoints are random, so this measures how far an option moves the outputs, not how a
trained model's answers change; an exact option (mapped embedding, paged experts) must give 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np

from gpt_oss_desktop.mlx_model import (
    SHAPES,
    ForwardPass,
    LoadOptions,
    PromptCache,
    load,
    tiny_config,
    write_random_checkpoint,
)

CACHE = Path.home() / ".cache" / "gpt-oss-desktop" / "bench-models"
MID = tiny_config(hidden_size=2880, intermediate_size=2880, head_dim=64, num_attention_heads=64,
                  num_key_value_heads=8, num_local_experts=8, sliding_window=128)
OPTIONS = {
    "mapped embedding": LoadOptions(embedding="mapped"),
    "8-bit dense": LoadOptions(embedding="resident", dense_bits=8),
    "4-bit dense": LoadOptions(embedding="resident", dense_bits=4),
    "paged experts (half resident)": None,  # budget depends on the checkpoint
}


def log_softmax(logits: mx.array) -> mx.array:
    logits = logits.astype(mx.float32)
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def kl(reference: mx.array, other: mx.array) -> float:
    log_p, log_q = log_softmax(reference), log_softmax(other)
    return mx.sum(mx.exp(log_p) * (log_p - log_q), axis=-1).mean().item()


def top1_agreement(reference: mx.array, other: mx.array) -> float:
    return mx.mean(mx.argmax(reference, -1) == mx.argmax(other, -1)).item()


def kv_cache_logits(folder: Path, kv_bits: int, positions: int, prompt: list[int]) -> mx.array:
    """Logits of `prompt` prefilled on `positions - len(prompt)` filled positions, at `kv_bits`."""
    model = load(folder, options=LoadOptions(kv_bits=kv_bits))
    config = model.config
    cache = PromptCache(model)
    filled = positions - len(prompt)
    mx.random.seed(0)  # the same keys and values at both widths
    for start in range(0, filled, 1024):
        shape = (1, config.num_key_value_heads, min(1024, filled - start), config.head_dim)
        for layer in cache.layers:
            layer.update(mx.random.normal(shape).astype(mx.bfloat16), mx.random.normal(shape).astype(mx.bfloat16))
        mx.eval(cache.state())
    cache.tokens.extend([0] * filled)
    forward = ForwardPass(model, cache)
    logits = []
    for end in range(filled + 1, positions + 1):  # every prompt position's next-token logits
        logits.append(forward.prefill([0] * filled + prompt[: end - filled]).logits)
    return mx.stack(logits)


def compare_kv_caches(folder: Path, positions: list[int], length: int) -> None:
    prompt = np.random.default_rng(1).integers(0, 200_000, length).tolist()
    print(f"{folder.name}: 8-bit KV cache against 16-bit, {length} real tokens after a cache fill")
    print(f"{'positions':<12}{'KL (nats)':>12}{'max KL':>12}{'top-1 agree':>13}")
    for count in positions:
        exact, rounded = (kv_cache_logits(folder, bits, count, prompt) for bits in (16, 8))
        log_p, log_q = log_softmax(exact), log_softmax(rounded)
        worst = mx.sum(mx.exp(log_p) * (log_p - log_q), axis=-1).max().item()
        print(f"{count:<12}{kl(exact, rounded):>12.3g}{worst:>12.3g}{top1_agreement(exact, rounded):>13.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--shape", choices=["tiny", "mid"], default="tiny")
    source.add_argument("--model", help="any gpt-oss folder instead of a random checkpoint")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--kv-positions", default=None,
                        help="comma-separated positions, e.g. 8192,32768: compare the 8-bit KV cache there instead")
    args = parser.parse_args(argv)

    folder = Path(args.model) if args.model else CACHE / f"quality-{args.shape}"
    if not args.model and not (folder / "config.json").exists():
        print(f"writing {folder} …", file=sys.stderr)
        write_random_checkpoint(folder, SHAPES["tiny"] if args.shape == "tiny" else MID, seed=3, tokenizer=False)
    if args.kv_positions:
        compare_kv_caches(folder, [int(p) for p in args.kv_positions.split(",")], min(args.length, 32))
        return 0
    prompts = mx.array(np.random.default_rng(0).integers(0, 200_000, (args.prompts, args.length)))

    baseline = load(folder, options=LoadOptions(embedding="resident"))
    reference = baseline(prompts)
    mx.eval(reference)
    experts = baseline.model.layers[0].mlp.experts
    slot_bytes = sum(v.nbytes for v in experts.weights.__dict__.values()) // experts.gate_up_proj_blocks.shape[0]
    layers = baseline.config.num_hidden_layers
    del baseline

    print(f"{folder.name}: {args.prompts} prompts × {args.length} tokens, against bfloat16 (all resident)")
    print(f"{'option':<32}{'KL (nats)':>12}{'top-1 agree':>13}")
    for name, options in OPTIONS.items():
        if options is None:
            options = LoadOptions(expert_budget_bytes=slot_bytes * layers * max(4, experts.gate_up_proj_blocks.shape[0] // 2))
        logits = load(folder, options=options)(prompts)
        print(f"{name:<32}{kl(reference, logits):>12.4g}{top1_agreement(reference, logits):>13.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
