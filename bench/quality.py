"""What each memory option costs in quality: KL divergence of next-token distributions against
the published bfloat16 weights, on random prompts.

    python bench/quality.py --shape tiny
    python bench/quality.py --shape mid     # real widths (2880), 4 layers, 8 experts
    python bench/quality.py --model ~/models/gpt-oss-20b --length 64   # the real weights, on a Mac

The checkpoints are random, so this measures how far an option moves the outputs, not how a
trained model's answers change; an exact option (mapped embedding, paged experts) must give 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np

from gpt_oss_desktop.mlx_model import SHAPES, LoadOptions, load, tiny_config, write_random_checkpoint

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--shape", choices=["tiny", "mid"], default="tiny")
    source.add_argument("--model", help="any gpt-oss folder instead of a random checkpoint")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args(argv)

    folder = Path(args.model) if args.model else CACHE / f"quality-{args.shape}"
    if not args.model and not (folder / "config.json").exists():
        print(f"writing {folder} …", file=sys.stderr)
        write_random_checkpoint(folder, SHAPES["tiny"] if args.shape == "tiny" else MID, seed=3, tokenizer=False)
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
