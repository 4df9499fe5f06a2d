"""Peak memory of gpt-oss on this project's engine, per load option, beside mlx-lm.

Each configuration runs in its own process: load the checkpoint, prefill a prompt of
`--prompt-tokens` and decode `--tokens`, then report MLX's peak memory (what counts against a
Mac's GPU working-set limit) and the process's peak RSS. mlx-lm runs on the same checkpoint and
prompt in the same run, and the table gives each configuration's ratio to it.

`--context N` measures a long context without computing it: before the prompt, both engines'
caches are filled with N - prompt-tokens positions of random keys and values (the shapes and
dtypes a real prefill leaves; memory depends on nothing else), then the prompt is prefilled for
real on top, attending to all N positions. At the full 20b shape a real 8k-token prefill takes
about 16 hours on this CPU; the fill takes seconds.

    python bench/memory.py --shape 20b --prompt-tokens 16 --tokens 2 --context 8192 --budget-gib 8.5
    python bench/memory.py --model PATH --configs resident,mapped,mapped+8bit --budget-gib 6
    python bench/memory.py --shape 120b --configs none --fit-mac-gib 64 --context 8192 --no-peer

`--fit-mac-gib 16,64` adds, per size, the options the app's automatic mode picks on a Mac with
that much memory (`mlx_model.plan_load` at the run's context length, as the app plans a load).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from gpt_oss_desktop.mlx_model import plan_load

GIB = 1024**3
CACHE = Path.home() / ".cache" / "gpt-oss-desktop" / "bench-models"

# name -> LoadOptions fields; "budget" is filled from --budget-gib
CONFIGS: dict[str, dict] = {
    "resident": dict(embedding="resident", dense_bits=16),
    "mapped": dict(embedding="mapped", dense_bits=16),
    "mapped+8bit": dict(embedding="mapped", dense_bits=8),
    "mapped+4bit": dict(embedding="mapped", dense_bits=4),
    "mapped+paged": dict(embedding="mapped", dense_bits=16, expert_budget_bytes="budget"),
    "mapped+8bit+paged": dict(embedding="mapped", dense_bits=8, expert_budget_bytes="budget"),
}

# Peak RSS of this process only: ru_maxrss would carry a forking parent's peak on Linux.
_PEAK_RSS = r"""
def peak_rss():
    try:
        with open("/proc/self/status") as status:
            return int(next(l for l in status if l.startswith("VmHWM")).split()[1]) * 1024
    except OSError:  # macOS: ru_maxrss is in bytes there
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

# Random keys and values for the first `count` positions of every layer cache, appended in
# chunks the way a prefill appends them. `update(layer, keys, values)` is the engine's own append.
_FILL = r"""
def fill(caches, count, update, heads, head_dim, dtype, chunk):
    mx.random.seed(0)  # the same keys and values in every process, so outputs can be compared
    for start in range(0, count, chunk):
        length = min(chunk, count - start)
        for layer in caches:
            keys = mx.random.normal((1, heads, length, head_dim)).astype(dtype)
            values = mx.random.normal((1, heads, length, head_dim)).astype(dtype)
            update(layer, keys, values)
        mx.eval([a for layer in caches for a in layer.state])
"""

_OURS = _PEAK_RSS + _FILL + r"""
import hashlib, json, sys, time
import mlx.core as mx, numpy as np
from gpt_oss_desktop.mlx_model import ForwardPass, LoadOptions, PromptCache, load
folder, options = sys.argv[1], json.loads(sys.argv[2])
prompt_tokens, new_tokens, chunk, context = (int(a) for a in sys.argv[3:7])
started = time.perf_counter()
model = load(folder, options=LoadOptions(**options))
loaded = time.perf_counter()
tokens = np.random.default_rng(0).integers(0, 200_000, max(context, prompt_tokens)).tolist()
cache = PromptCache(model)
forward = ForwardPass(model, cache, chunk_size=chunk)
filled = len(tokens) - prompt_tokens
config = model.config
fill(cache.layers, filled, lambda layer, k, v: layer.update(k, v), config.num_key_value_heads, config.head_dim,
     mx.bfloat16, chunk)
cache.tokens.extend(tokens[:filled])
filled_at = time.perf_counter()
logits = forward.prefill(tokens).logits
prefilled = time.perf_counter()
generated = []
for _ in range(new_tokens):
    token = mx.argmax(logits)
    generated.append(token.item())
    logits = forward.step(token)
    cache.record(generated[-1])
mx.eval(logits)
done = time.perf_counter()
paging = [layer.mlp.experts.stats for layer in model.model.layers if hasattr(layer.mlp.experts, "stats")]
print(json.dumps(dict(
    peak_mlx=mx.get_peak_memory(), active_mlx=mx.get_active_memory(),
    peak_rss=peak_rss(),
    load_s=loaded - started, prefill_s=prefilled - filled_at, decode_s_per_token=(done - prefilled) / max(new_tokens, 1),
    hit_rate=(sum(s.hits for s in paging) / max(1, sum(s.hits + s.misses for s in paging))) if paging else None,
    tokens=generated, logits_sha256=hashlib.sha256(np.array(logits.astype(mx.float32)).tobytes()).hexdigest()[:16],
)))
"""

_MLX_LM = _PEAK_RSS + _FILL + r"""
import json, sys, time
import mlx.core as mx, numpy as np
from mlx_lm import load
from mlx_lm.generate import generate_step
from mlx_lm.models.cache import make_prompt_cache
folder = sys.argv[1]
prompt_tokens, new_tokens, chunk, context = (int(a) for a in sys.argv[2:6])
started = time.perf_counter()
model, tokenizer = load(folder)
loaded = time.perf_counter()
tokens = np.random.default_rng(0).integers(0, 200_000, max(context, prompt_tokens)).tolist()
cache = make_prompt_cache(model)
args = model.args
fill(cache, len(tokens) - prompt_tokens, lambda layer, k, v: layer.update_and_fetch(k, v), args.num_key_value_heads,
     args.head_dim, mx.bfloat16, chunk)
filled_at = time.perf_counter()
prompt = mx.array(tokens[len(tokens) - prompt_tokens:])
steps = generate_step(prompt, model, prompt_cache=cache, max_tokens=new_tokens, sampler=lambda x: mx.argmax(x, axis=-1),
                      prefill_step_size=chunk)
first = None
generated = []
for token, _ in steps:
    generated.append(int(token))
    if first is None:
        first = time.perf_counter()
done = time.perf_counter()
print(json.dumps(dict(
    peak_mlx=mx.get_peak_memory(), active_mlx=mx.get_active_memory(),
    peak_rss=peak_rss(),
    load_s=loaded - started, prefill_s=first - filled_at, decode_s_per_token=(done - first) / max(new_tokens - 1, 1),
    hit_rate=None, tokens=generated, logits_sha256=None,
)))
"""


def run(script: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark process failed (exit {result.returncode}, negative = killed by that "
                           f"signal, e.g. -9 when memory ran out):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def checkpoint(shape: str | None, model: str | None) -> Path:
    if model:
        return Path(model)
    from gpt_oss_desktop.mlx_model import write_random_checkpoint

    folder = CACHE / shape
    if not (folder / "config.json").exists():
        print(f"writing a random {shape} checkpoint to {folder} …", file=sys.stderr)
        write_random_checkpoint(folder, shape, seed=0, shards=3)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--shape", choices=["tiny", "20b", "120b"])
    source.add_argument("--model")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--budget-gib", type=float, default=None, help="expert budget for the paged configs")
    parser.add_argument("--fit-mac-gib", default="", help="comma-separated Mac memory sizes: run what fits each")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=512, help="prefill chunk (ours and mlx-lm's)")
    parser.add_argument("--context", type=int, default=0,
                        help="context length in the caches when the prompt ends (random keys and values fill "
                             "what precedes the prompt); 0: the prompt alone")
    parser.add_argument("--no-peer", action="store_true", help="skip mlx-lm")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    folder = checkpoint(args.shape, args.model)

    configs = {name: dict(CONFIGS[name]) for name in args.configs.split(",") if name != "none"}
    context = max(args.context, args.prompt_tokens)
    for mac in filter(None, args.fit_mac_gib.split(",")):
        plan = plan_load(folder, context, total_ram=int(float(mac) * GIB))
        if not plan.fits:
            print(f"nothing fits a {mac} GiB Mac at {context} tokens", file=sys.stderr)
        else:
            configs[f"fit {mac} GiB Mac"] = asdict(plan.options)

    results: dict[str, dict] = {}
    if not args.no_peer:
        results["mlx-lm"] = run(_MLX_LM, str(folder), str(args.prompt_tokens), str(args.tokens), str(args.chunk),
                                str(args.context))
        print(f"mlx-lm: {results['mlx-lm']}", file=sys.stderr)
    for name, options in configs.items():
        if options.get("expert_budget_bytes") == "budget":
            if args.budget_gib is None:
                continue
            options["expert_budget_bytes"] = int(args.budget_gib * GIB)
        results[name] = run(_OURS, str(folder), json.dumps(options), str(args.prompt_tokens), str(args.tokens), str(args.chunk),
                            str(args.context))
        print(f"{name}: {results[name]}", file=sys.stderr)

    peer = results.get("mlx-lm")
    context = f", context {max(args.context, args.prompt_tokens)} (the rest random keys and values)" if args.context else ""
    print(f"\n{folder.name}: prompt {args.prompt_tokens} tokens, {args.tokens} new, chunk {args.chunk}{context}")
    for name in results:
        if name in configs:
            print(f"{name}: {configs[name]}")
    print(f"{'config':<20}{'peak MLX GiB':>14}{'peak RSS GiB':>14}{'vs mlx-lm':>11}{'load s':>9}{'s/token':>10}"
          f"{'hit rate':>10}  tokens, last logits")
    for name, r in results.items():
        ratio = f"{r['peak_mlx'] / peer['peak_mlx']:.2f}" if peer else "-"
        hits = f"{r['hit_rate']:.2f}" if r["hit_rate"] is not None else "-"
        print(f"{name:<20}{r['peak_mlx'] / GIB:>14.2f}{r['peak_rss'] / GIB:>14.2f}{ratio:>11}"
              f"{r['load_s']:>9.1f}{r['decode_s_per_token']:>10.2f}{hits:>10}  {r['tokens']} {r['logits_sha256'] or ''}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(checkpoint=str(folder), args=vars(args), results=results), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
