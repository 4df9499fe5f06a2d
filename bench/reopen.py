"""Time to first token of a reopened long chat against a cold prefill, ours beside mlx-lm.

A long chat (a user message making a prompt of `--lengths` tokens, and an answer) is answered
and its prompt cache written to disk, as the app does when a chat is left or the app quits
(`Engine.save_prompt_cache`). Then a short new question is asked twice, each in a fresh
process, as after a restart: cold (no cache file: the whole chat is prefilled, what an engine
without one does) and reopened (`Engine.restore_prompt_cache`, then only what is new is
prefilled). The reopened time to first token includes reading the file; the ratio is
cold / reopened. mlx-lm runs the same way on the same prompt ids with its own file format
(`mlx_lm.cache_prompt`'s path: `generate_step(max_tokens=0)` and `save_prompt_cache`, then
`load_prompt_cache`), saving the same prefix ours saved.

    python bench/reopen.py --lengths 4096,16384
    python bench/reopen.py --model ~/models/gpt-oss-20b --lengths 4096 --repeats 1 --json reopen.json

The default checkpoint is random, the tests' tiny shape with the published sliding window (128
positions, sliding and full layers alternating), written once under ~/.cache: small enough that a
16k-token prompt prefills in minutes here (bench/speed.py's shape "tiny-window-128").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import START_DATE, BenchError, Plan, machine, make_plan, random_checkpoint  # noqa: E402 - bench/ is on the path now

if TYPE_CHECKING:
    from gpt_oss_desktop.mlx_model import Chat

KEY = "chat"  # the cache store's key for the one chat
PEER_FILE = "mlx-lm.safetensors"
STAGES = ("save", "cold", "reopened")


# -- one stage of one engine, in a process of its own -------------------------------------------------


def _first_token_s(started: float, token_times: list[float]) -> float:
    if not token_times:
        raise BenchError("no token was generated")
    return token_times[0] - started


def _asked(plan: Plan) -> Chat:
    """The long chat with its answer and the new question: what the cold and reopened runs answer."""
    from gpt_oss_desktop.mlx_model import Chat, assistant_message

    history, new = plan.turns
    chat = Chat(start_date=START_DATE)
    chat.add_user(history.user)
    chat.messages.append(assistant_message(history.reply))
    chat.add_user(new.user)
    return chat


def ours(stage: str, plan: Plan, store_dir: Path) -> dict:
    """Our engine as the app drives it: `Engine.reply` on a Chat, the cache written and read by
    `Engine.save_prompt_cache` / `restore_prompt_cache` in a CacheStore."""
    from gpt_oss_desktop.mlx_model import GIB, CacheStore, Chat, Engine, SamplingSettings, Stats, assistant_message

    history, new = plan.turns
    engine = Engine.load(plan.model, context_length=len(new.prompt) + plan.new_tokens)
    store = CacheStore(store_dir, 4 * GIB)  # the app's default disk budget
    sampling = SamplingSettings(temperature=0.0, max_new_tokens=plan.new_tokens)
    result: dict = {}
    if stage == "save":
        chat, turn = Chat(start_date=START_DATE), history
        chat.add_user(history.user)
    else:
        chat, turn = _asked(plan), new
    if stage == "reopened":
        started = time.perf_counter()
        note = engine.restore_prompt_cache(store, KEY, chat)
        result["restore_s"] = time.perf_counter() - started
        if note:
            raise BenchError(note)
    token_times: list[float] = []
    started = time.perf_counter()
    events = list(engine.reply(chat, sampling, on_token=lambda _id: token_times.append(time.perf_counter())))
    stats = next(e for e in events if isinstance(e, Stats))
    if engine.last_prompt != turn.prompt:
        raise BenchError(f"{stage}: our engine rendered a prompt other than the plan's")
    result.update(ttft_s=_first_token_s(started, token_times), prompt_tokens=stats.prompt_tokens,
                  cached_tokens=stats.cached_tokens)
    if stage == "save":
        # Random weights write no harmony message: the history keeps a fixed answer, as in speed.py.
        del chat.messages[1:]
        chat.messages.append(assistant_message(history.reply))
        started = time.perf_counter()
        if not engine.save_prompt_cache(store, KEY, chat):
            raise BenchError("the engine saved no prompt cache")
        result.update(save_s=time.perf_counter() - started, file_bytes=store.path(KEY).stat().st_size,
                      saved_tokens=store.token_count(KEY))
    return result


def mlx_lm(stage: str, plan: Plan, store_dir: Path, saved_tokens: int) -> dict:
    """mlx-lm's own reopen path: `mlx_lm.cache_prompt` (a prefill by `generate_step(max_tokens=0)`,
    then `save_prompt_cache`) and `load_prompt_cache` before `stream_generate` of the rest."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.generate import generate_step, stream_generate
    from mlx_lm.models.cache import load_prompt_cache, make_prompt_cache, save_prompt_cache
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = load(plan.model)
    prompt = plan.turns[1].prompt
    path = store_dir / PEER_FILE
    if stage == "save":
        cache = make_prompt_cache(model)
        started = time.perf_counter()
        for _ in generate_step(mx.array(prompt[:saved_tokens]), model, max_tokens=0, prompt_cache=cache):
            pass
        prefilled = time.perf_counter()
        save_prompt_cache(str(path), cache)
        return dict(ttft_s=prefilled - started, save_s=time.perf_counter() - prefilled, file_bytes=path.stat().st_size,
                    prompt_tokens=saved_tokens, cached_tokens=0, saved_tokens=saved_tokens)
    result: dict = {}
    if stage == "reopened":
        started = time.perf_counter()
        cache = load_prompt_cache(str(path))
        mx.eval([layer.state for layer in cache])
        result["restore_s"] = time.perf_counter() - started
        fed = prompt[saved_tokens:]
    else:
        cache, fed = make_prompt_cache(model), prompt
    token_times: list[float] = []
    started = time.perf_counter()
    for _ in stream_generate(model, tokenizer, fed, max_tokens=plan.new_tokens, sampler=make_sampler(temp=0.0),
                             prompt_cache=cache):
        token_times.append(time.perf_counter())
    result.update(ttft_s=_first_token_s(started, token_times), prompt_tokens=len(prompt),
                  cached_tokens=len(prompt) - len(fed))
    return result


def run_stage(engine: str, stage: str, plan_file: Path, store_dir: Path, saved_tokens: int = 0) -> dict:
    """One stage in a fresh process: nothing of an earlier stage stays in memory."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--stage", stage,
               "--plan", str(plan_file), "--store", str(store_dir), "--saved-tokens", str(saved_tokens)]
    finished = subprocess.run(command, check=False, capture_output=True, text=True)
    if finished.returncode != 0:
        raise BenchError(f"{engine} {stage} failed (exit {finished.returncode}):\n{finished.stderr[-4000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


# -- one length, every engine ---------------------------------------------------------------------------


def measure(model: Path, length: int, *, new_tokens: int, repeats: int, engines: tuple[str, ...]) -> dict[str, dict]:
    """Per engine: the save, then `repeats` cold and reopened answers (their order alternating),
    with medians; raises BenchError when the reopened answer did not reuse the saved history."""
    plan = make_plan(model, prompt_tokens=length, turns=2, new_tokens=new_tokens)
    history, new = plan.turns
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        plan_file, store = Path(scratch) / "plan.json", Path(scratch) / "caches"
        plan_file.write_text(json.dumps(asdict(plan)))
        saved = run_stage("ours", "save", plan_file, store)
        for engine in engines:
            runs: dict[str, list[dict]] = {"save": [saved] if engine == "ours" else
                                           [run_stage(engine, "save", plan_file, store, saved["saved_tokens"])],
                                           "cold": [], "reopened": []}
            for repeat in range(repeats):
                for stage in ("cold", "reopened") if repeat % 2 == 0 else ("reopened", "cold"):
                    runs[stage].append(run_stage(engine, stage, plan_file, store, saved["saved_tokens"]))
            results[engine] = summarize(runs)
            print(f"{length}: {engine} cold {results[engine]['cold_ttft_s']:.2f} s, reopened "
                  f"{results[engine]['reopened_ttft_s']:.2f} s", file=sys.stderr)
    reopened = results["ours"]
    if not len(history.prompt) <= saved["saved_tokens"] == reopened["cached_tokens"] < reopened["prompt_tokens"]:
        raise BenchError(f"the reopened chat reused {reopened['cached_tokens']} tokens; the file holds "
                         f"{saved['saved_tokens']}, the history's question alone is {len(history.prompt)}")
    for values in results.values():
        values.update(history_tokens=len(history.prompt), new_message_tokens=len(new.new_ids))
    return results


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Medians of the cold and reopened runs; the reopened TTFT counts reading the file."""
    def median(stage: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[stage])

    restore = median("reopened", "restore_s")
    reopened = statistics.median(run["restore_s"] + run["ttft_s"] for run in runs["reopened"])
    save = runs["save"][0]
    return dict(cold_ttft_s=median("cold", "ttft_s"), restore_s=restore, reopened_ttft_s=reopened,
                ratio=median("cold", "ttft_s") / reopened, file_bytes=save["file_bytes"], save_s=save["save_s"],
                history_ttft_s=save["ttft_s"], prompt_tokens=runs["cold"][0]["prompt_tokens"],
                cached_tokens=runs["reopened"][0]["cached_tokens"], runs=runs)


HEADERS = ("history tok", "engine", "prompt tok", "cached tok", "cold TTFT s", "restore s", "reopened TTFT s",
           "cold/reopened", "file MiB", "save s")


def format_table(results: dict[int, dict[str, dict]]) -> str:
    rows = []
    for by_engine in results.values():
        for engine, r in by_engine.items():
            rows.append([str(r["history_tokens"]), engine, str(r["prompt_tokens"]), str(r["cached_tokens"]),
                         f"{r['cold_ttft_s']:.2f}", f"{r['restore_s']:.3f}", f"{r['reopened_ttft_s']:.3f}",
                         f"{r['ratio']:.1f}", f"{r['file_bytes'] / 2**20:.1f}", f"{r['save_s']:.3f}"])
    widths = [max(len(cell) for cell in column) for column in zip(HEADERS, *rows)]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [list(HEADERS), *rows])


# -- the command line -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a gpt-oss model folder (default: the random tiny-window-128 shape)")
    parser.add_argument("--lengths", default="4096,16384", help="comma-separated prompt lengths of the long chat")
    parser.add_argument("--tokens", type=int, default=2, help="new tokens per answer")
    parser.add_argument("--repeats", type=int, default=1, help="cold and reopened answers per length and engine")
    parser.add_argument("--no-peer", action="store_true", help="skip mlx-lm")
    parser.add_argument("--json", type=Path, help="also write every run and the medians here")
    parser.add_argument("--worker", choices=("ours", "mlx-lm"), help=argparse.SUPPRESS)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--saved-tokens", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        plan = Plan.from_json(args.plan.read_text())
        result = (ours(args.stage, plan, args.store) if args.worker == "ours"
                  else mlx_lm(args.stage, plan, args.store, args.saved_tokens))
        print(json.dumps(result))
        return 0
    engines = ("ours",) if args.no_peer or not importlib.util.find_spec("mlx_lm") else ("ours", "mlx-lm")
    try:
        model = args.model.expanduser() if args.model else random_checkpoint("tiny-window-128")
        results = {length: measure(model, length, new_tokens=args.tokens, repeats=args.repeats, engines=engines)
                   for length in (int(n) for n in args.lengths.split(","))}
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{model.name}: a long chat's answer saved, then a new question in a fresh process, cold and reopened; "
          f"{args.tokens} new tokens greedily, medians of {args.repeats}")
    print(format_table(results))
    print("reopened TTFT = reading the cache file + the first token; cold/reopened above 1: reopening pays")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
