"""Batched decode (several sequences per forward pass) on this backend: one decode step for
B = 1, 2, 4 sequences at once, on our model and on mlx-lm's, on the same checkpoint in the same
run.

Each engine prefills B random prompts of `--context` tokens, then times `--steps` decode steps of
B tokens (one per sequence), after one warm-up step. Ours runs the server's path: B prompt
caches of their own and one `forward.answer_steps` over B step requests (projections and MoE
over the B rows, attention per row); mlx-lm's is one batched cache. Throughput gain = B × (time
of a step at B = 1) / (time of a step at B): above 1 batching pays, at B it is free.

    python bench/batch.py --shape mid --context 64 --steps 3
    python bench/batch.py --model ~/models/gpt-oss-20b
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BATCHES = (1, 2, 4)


def _time_steps(step, steps: int) -> float:
    """Median seconds of one call of `step` (it evaluates its own output)."""
    step()  # warm-up: compiles kernels and grows the caches once
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ours(model_dir: Path, batch: int, context: int, steps: int) -> float:
    import mlx.core as mx

    from gpt_oss_desktop.mlx_model import ForwardPass, PromptCache, StepRequest, answer_steps, load

    model = load(model_dir)
    prompts = mx.random.randint(0, 1000, (batch, context), key=mx.random.key(0)).astype(mx.uint32).tolist()
    caches = [PromptCache(model) for _ in prompts]
    for cache, prompt in zip(caches, prompts):
        ForwardPass(model, cache).prefill(prompt)
    token = mx.zeros((), dtype=mx.uint32)

    def step() -> None:
        requests = [StepRequest(cache, token) for cache in caches]
        answer_steps(model, requests)
        mx.eval(*(request.logits for request in requests))

    return _time_steps(step, steps)


def mlx_lm(model_dir: Path, batch: int, context: int, steps: int) -> float:
    import mlx.core as mx
    from mlx_lm import load as load_mlx_lm
    from mlx_lm.models.cache import make_prompt_cache

    model, _ = load_mlx_lm(str(model_dir))
    cache = make_prompt_cache(model)
    prompts = mx.random.randint(0, 1000, (batch, context), key=mx.random.key(0)).astype(mx.uint32)
    mx.eval(model(prompts, cache=cache))
    token = mx.zeros((batch, 1), dtype=mx.uint32)

    def step() -> None:
        mx.eval(model(token, cache=cache)[:, -1])

    return _time_steps(step, steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="a gpt-oss model folder (Hub layout)")
    source.add_argument("--shape", choices=("tiny", "mid", "20b"), default="mid",
                        help="a random checkpoint of this shape (written once, as bench/speed.py does)")
    parser.add_argument("--context", type=int, default=64, help="tokens already in each sequence's cache")
    parser.add_argument("--steps", type=int, default=3, help="timed decode steps per batch size")
    args = parser.parse_args(argv)
    from speed import random_checkpoint

    model_dir = args.model.expanduser() if args.model else random_checkpoint(args.shape)
    engines = {"ours": ours}
    if importlib.util.find_spec("mlx_lm"):
        engines["mlx-lm"] = mlx_lm
    seconds = {name: {b: run(model_dir, b, args.context, args.steps) for b in BATCHES} for name, run in engines.items()}
    print(f"{model_dir.name}: one decode step of B sequences at {args.context} tokens of context, "
          f"median of {args.steps}")
    print("engine   " + "".join(f"   B={b} ms/step  gain" for b in BATCHES))
    for name, by_batch in seconds.items():
        one = by_batch[1]
        print(f"{name:<8} " + "".join(f"   {by_batch[b] * 1000:10.1f}  {b * one / by_batch[b]:4.2f}" for b in BATCHES))
    if "mlx-lm" in seconds:
        print("ours / mlx-lm step time: " + ", ".join(
            f"B={b} {seconds['ours'][b] / seconds['mlx-lm'][b]:.2f}" for b in BATCHES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
