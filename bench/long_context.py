"""Long-context prefill on this project's engine beside mlx-lm: time and peak memory at 4k to 128k
positions, on the same checkpoint in the same run.

Each (engine, length) runs in a process of its own, so MLX's peak memory and the peak RSS are
that run's alone; the engines' order alternates from one length to the next. Lengths up to
`--prefill-max` are real prefills of that many random token ids from an empty cache (ours:
`ForwardPass.prefill` in chunks of 512, as the engine does; mlx-lm: `generate_step` with its
`prefill_step_size`, 2048 by default, to its first token). Longer ones are fills: both engines'
caches get N - `--fill-tokens` positions of random keys and values (as bench/memory.py does: the
shapes and dtypes a real prefill leaves), then the last `--fill-tokens` are prefilled for real on
top, attending to all N positions; that chunk is timed. "s/1k" is seconds per 1000 prefilled
tokens and "vs first" its ratio to the first length's: flat means linear prefill. A fill's
figure is the marginal cost at position N (higher than a whole prefill's average, whose early
tokens see fewer keys).

The default checkpoint, tiny-window-128, is the tests' tiny shape (4 layers alternating sliding
and full attention, 8 query and 2 KV heads of 16) with the 20b's 128-key window and 131072
positions. A 2-core CPU prefills 4k of it for real in under a minute; the full layers'
attention is quadratic there (MLX's CPU attention), so the defaults fill the longer lengths.

    python bench/long_context.py --lengths 4096,16384,32768,131072 --prefill-max 4096 --fill-tokens 512
    python bench/long_context.py --model ~/models/gpt-oss-20b --prefill-max 131072 --json long.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import GIB, SHAPE_FOLDERS, BenchError, _figure, _peak_rss_bytes, machine, random_checkpoint  # noqa: E402

ENGINES = ("ours", "mlx-lm")
OUR_CHUNK = 512  # Engine's default prefill chunk
FILL_CHUNK = 4096  # positions of random keys and values appended at a time


@dataclass(frozen=True)
class Job:
    engine: str
    model: str
    length: int  # positions in the cache when the prefill ends
    prefilled: int  # of which computed for real (the rest filled)
    chunk: int  # 0: the engine's own default


@dataclass(frozen=True)
class Result:
    engine: str
    length: int
    prefilled: int
    seconds: float  # the real prefill, to the last token's logits
    peak_mlx_bytes: int
    peak_rss_bytes: int

    @property
    def mode(self) -> str:
        return "prefill" if self.prefilled == self.length else "fill"

    @property
    def seconds_per_1k(self) -> float:
        return 1000 * self.seconds / self.prefilled


def _ids(count: int) -> list[int]:
    """The same random token ids in every process."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 200_000, count).tolist()


def fill(layers: Sequence, count: int, update: Callable, heads: int, head_dim: int) -> None:
    """Append `count` positions of seeded random bfloat16 keys and values to every layer cache, in
    chunks as a prefill appends them; `update(layer, keys, values)` is the engine's own append."""
    import mlx.core as mx

    mx.random.seed(0)
    for start in range(0, count, FILL_CHUNK):
        length = min(FILL_CHUNK, count - start)
        for layer in layers:
            keys = mx.random.normal((1, heads, length, head_dim)).astype(mx.bfloat16)
            values = mx.random.normal((1, heads, length, head_dim)).astype(mx.bfloat16)
            update(layer, keys, values)
        mx.eval([array for layer in layers for array in layer.state])


def run_ours(job: Job) -> float:
    """Our model below the engine (as bench/memory.py): a PromptCache holding the filled
    positions, then ForwardPass.prefill of the whole id list, which computes only the rest."""
    import mlx.core as mx

    from gpt_oss_desktop.mlx_model import ForwardPass, PromptCache, load

    model = load(job.model)
    cache = PromptCache(model)
    tokens = _ids(job.length)
    filled = job.length - job.prefilled
    config = model.config
    fill(cache.layers, filled, lambda layer, k, v: layer.update(k, v), config.num_key_value_heads, config.head_dim)
    cache.tokens.extend(tokens[:filled])
    forward = ForwardPass(model, cache, chunk_size=job.chunk or OUR_CHUNK)
    started = time.perf_counter()
    mx.eval(forward.prefill(tokens).logits)
    return time.perf_counter() - started


def run_mlx_lm(job: Job) -> float:
    """mlx-lm as its generate does it: generate_step over the real ids to the first token, in
    chunks of prefill_step_size, on a make_prompt_cache filled first."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.generate import generate_step
    from mlx_lm.models.cache import make_prompt_cache

    model, _ = load(job.model)
    cache = make_prompt_cache(model)
    args = model.args
    fill(cache, job.length - job.prefilled, lambda layer, k, v: layer.update_and_fetch(k, v),
         args.num_key_value_heads, args.head_dim)
    prompt = mx.array(_ids(job.length)[job.length - job.prefilled :])
    options = {"prefill_step_size": job.chunk} if job.chunk else {}
    started = time.perf_counter()
    steps = generate_step(prompt, model, prompt_cache=cache, max_tokens=1, sampler=lambda x: mx.argmax(x, axis=-1),
                          **options)
    next(iter(steps))
    return time.perf_counter() - started


WORKERS: dict[str, Callable[[Job], float]] = {"ours": run_ours, "mlx-lm": run_mlx_lm}


def worker(job: Job) -> Result:
    import mlx.core as mx

    seconds = WORKERS[job.engine](job)
    return Result(job.engine, job.length, job.prefilled, seconds, mx.get_peak_memory(), _peak_rss_bytes())


def run_job(job: Job) -> Result | str:
    """One engine at one length in a fresh process; a failure (e.g. killed when memory ran out)
    comes back as its reason, so the other rows still print."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(asdict(job))]
    finished = subprocess.run(command, check=False, capture_output=True, text=True)
    if finished.returncode != 0:
        reason = f"exit {finished.returncode}" + (" (killed: out of memory?)" if finished.returncode < 0 else "")
        print(f"{job.engine} at {job.length}: {reason}\n{finished.stderr[-2000:]}", file=sys.stderr)
        return reason
    return Result(**json.loads(finished.stdout.strip().splitlines()[-1]))


def plan(model: Path, lengths: list[int], prefill_max: int, fill_tokens: int, chunk: int,
         engines: tuple[str, ...]) -> list[Job]:
    """Every engine at every length, the engines' order alternating from one length to the next
    so a drift in the machine's load does not always fall on the same engine."""
    jobs = []
    for index, length in enumerate(lengths):
        prefilled = length if length <= prefill_max else min(fill_tokens, length)
        jobs += [Job(engine, str(model), length, prefilled, chunk) for engine in engines[:: -1 if index % 2 else 1]]
    return jobs


def format_table(results: list[Result | str], jobs: list[Job]) -> str:
    """One row per length: each engine's time, s/1k and its ratio to the first length's, peaks,
    and ours / mlx-lm ratios (time below 1 and speed above 1 favour ours; memory below 1)."""
    by = {(job.engine, job.length): result for job, result in zip(jobs, results)}
    lengths = sorted({job.length for job in jobs})
    first = {engine: by.get((engine, lengths[0])) for engine in ENGINES}

    def cell(engine: str, length: int, value: Callable[[Result], float]) -> str:
        result = by.get((engine, length))
        return _figure(value(result)) if isinstance(result, Result) else "-" if result is None else "failed"

    def ratio(length: int, value: Callable[[Result], float]) -> str:
        ours, peer = by.get(("ours", length)), by.get(("mlx-lm", length))
        both = isinstance(ours, Result) and isinstance(peer, Result)
        return f"{value(ours) / value(peer):.2f}" if both else "-"

    def linearity(engine: str) -> Callable[[Result], float]:
        base = first[engine]
        return lambda r: r.seconds_per_1k / base.seconds_per_1k if isinstance(base, Result) else math.nan

    headers = ["positions", "mode", "real", "ours s", "mlx-lm s", "ours/mlx-lm time", "mlx-lm/ours speed",
               "ours s/1k", "vs first", "mlx-lm s/1k", "vs first", "ours peak GiB", "mlx-lm peak GiB",
               "ours/mlx-lm peak", "ours RSS GiB", "mlx-lm RSS GiB"]
    rows = []
    for length in lengths:
        job = next(job for job in jobs if job.length == length)
        rows.append([
            str(length), "prefill" if job.prefilled == length else "fill", str(job.prefilled),
            cell("ours", length, lambda r: r.seconds), cell("mlx-lm", length, lambda r: r.seconds),
            ratio(length, lambda r: r.seconds), ratio(length, lambda r: 1 / r.seconds),
            cell("ours", length, lambda r: r.seconds_per_1k), cell("ours", length, linearity("ours")),
            cell("mlx-lm", length, lambda r: r.seconds_per_1k), cell("mlx-lm", length, linearity("mlx-lm")),
            cell("ours", length, lambda r: r.peak_mlx_bytes / GIB), cell("mlx-lm", length, lambda r: r.peak_mlx_bytes / GIB),
            ratio(length, lambda r: r.peak_mlx_bytes),
            cell("ours", length, lambda r: r.peak_rss_bytes / GIB), cell("mlx-lm", length, lambda r: r.peak_rss_bytes / GIB),
        ])
    widths = [max(len(c) for c in column) for column in zip(headers, *rows)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [headers, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="a gpt-oss model folder (Hub layout)")
    source.add_argument("--shape", choices=list(SHAPE_FOLDERS), default="tiny-window-128",
                        help="write (once, under ~/.cache) and use a random checkpoint of this shape")
    parser.add_argument("--lengths", default="4096,16384,32768,131072", help="comma-separated positions")
    parser.add_argument("--prefill-max", type=int, default=4096, help="longer lengths are filled, not prefilled")
    parser.add_argument("--fill-tokens", type=int, default=512, help="real tokens prefilled on top of a fill")
    parser.add_argument("--chunk", type=int, default=0,
                        help="prefill chunk for both engines; 0: each its own default (ours 512, mlx-lm 2048)")
    parser.add_argument("--no-peer", action="store_true", help="skip mlx-lm")
    parser.add_argument("--json", type=Path, help="also write the machine, arguments and every run here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(asdict(worker(Job(**json.loads(args.worker))))))
        return 0
    engines = ENGINES if not args.no_peer and importlib.util.find_spec("mlx_lm") else ("ours",)
    if len(engines) == 1 and not args.no_peer:
        print("mlx-lm is not installed: measuring our engine alone, no ratios", file=sys.stderr)
    try:
        model = args.model.expanduser() if args.model else random_checkpoint(args.shape)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    lengths = sorted(int(n) for n in args.lengths.split(","))
    jobs = plan(model, lengths, args.prefill_max, args.fill_tokens, args.chunk, engines)
    results: list[Result | str] = []
    for job in jobs:
        results.append(run_job(job))
        if isinstance(results[-1], Result):
            print(f"{job.engine} at {job.length} ({job.prefilled} real): {results[-1].seconds:.2f} s, "
                  f"peak {results[-1].peak_mlx_bytes / GIB:.2f} GiB", file=sys.stderr)

    print(f"checkpoint {model}; prefill chunk "
          + (str(args.chunk) if args.chunk else f"ours {OUR_CHUNK}, mlx-lm its default (2048)"))
    print(format_table(results, jobs))
    print("time and peak ratios below 1 favour ours, the speed ratio above 1; "
          "'vs first': s/1k over the first length's (1 = linear)")
    if args.json:
        runs = [asdict(r) | {"mode": r.mode} if isinstance(r, Result) else {**asdict(j), "failed": r}
                for j, r in zip(jobs, results)]
        report = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failed = sum(isinstance(r, str) for r in results)
    return 1 if failed == len(results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
