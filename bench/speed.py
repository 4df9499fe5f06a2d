"""Speed of gpt-oss on this project's engine beside mlx-lm, on the same checkpoint in the same run.

A five-turn chat (by default) runs on each engine in its own process: prefill and decode tokens
per second, time to first token at the first and the last turn, peak MLX memory and peak RSS.
Both engines read the same prompt token ids and generate the same number of tokens greedily; the
runs are repeated with the engines' order alternating, and the table gives medians and the
ours / mlx-lm ratios (what stays meaningful on a shared, noisy machine). Without mlx-lm installed
only our engine runs.

    python bench/speed.py --shape mid --prompt-tokens 128 --tokens 6 --turns 5 --repeats 3
    python bench/speed.py --model ~/models/gpt-oss-20b --json speed.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpt_oss_desktop.mlx_model import Chat, Tokenizer

# mlx_model and mlx_lm are imported inside the functions that use them: each worker process
# loads only its own engine's libraries, so neither engine's memory includes the other's.
ENGINES = ("ours", "mlx-lm")
CACHE = Path.home() / ".cache" / "gpt-oss-desktop" / "bench-models"
# "mid" keeps the 20b's per-layer shape (hidden 2880, 32 experts, full vocabulary) with two
# layers, one sliding and one full: real per-token work per layer at a tenth of the 20b's cost.
SHAPE_FOLDERS = {"tiny": "tiny", "mid": "20b-2-layers", "20b": "20b", "tiny-window-128": "tiny-window-128"}
# "tiny-window-128" is the tiny shape with the 20b's 128-key window (tiny's is 16), so sliding
# layers cost what they cost the real model per position: bench/long_context.py prefills it to 128k.
# A fixed date keeps the system message, and so every prompt id, the same from run to run.
START_DATE = "2025-08-05"
OPENING = (
    "I am planning a small vegetable garden behind a terraced house in a rainy northern town. "
    "The plot gets about five hours of sun in midsummer, the soil is heavy clay, and slugs are "
    "everywhere after dark. I would like to grow salad leaves, beans, a few potatoes and some "
    "herbs for the kitchen, and I can spend an hour or two at the weekend on it. "
)
# Turn k > 1 asks FOLLOW_UPS[(k - 2) % 4]; the history keeps REPLIES[(k - 1) % 5] as turn k's answer.
FOLLOW_UPS = ("What about the slugs?", "And which herbs first?", "When do I plant potatoes?", "Summarise it in one line.")
REPLIES = (
    "Raised beds filled with compost, beans on a trellis, salads in the shade.",
    "Copper tape, beer traps and evening patrols keep them down.",
    "Chives, parsley and mint in pots; they forgive clay and rain.",
    "Early varieties go in around mid-April, once frosts ease.",
    "Raised beds, slug patrols, herbs in pots and potatoes in April.",
)


class BenchError(RuntimeError):
    """The benchmark cannot measure what it claims (a worker failed, or prompts diverged)."""


# -- the plan both engines follow ----------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    user: str
    prompt: list[int]  # the whole prompt our engine renders for this turn
    new_ids: list[int]  # what this turn adds to the previous turn's prompt (all of it at turn 1)
    reply: str  # what the history keeps as this turn's answer (random weights answer noise)


@dataclass(frozen=True)
class Plan:
    model: str
    new_tokens: int
    turns: list[Turn]

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        return cls(raw["model"], raw["new_tokens"], [Turn(**turn) for turn in raw["turns"]])


def _render(conversation: Chat, tokenizer: Tokenizer) -> list[int]:
    """The prompt exactly as the engine renders it (completed chains of thought dropped)."""
    from gpt_oss_desktop.mlx_model import render_prompt

    return render_prompt(conversation, tokenizer)


def _first_prompt(tokenizer: Tokenizer, opening: str) -> list[int]:
    from gpt_oss_desktop.mlx_model import Chat

    conversation = Chat(start_date=START_DATE)
    conversation.add_user(opening)
    return _render(conversation, tokenizer)


def _opening_message(tokenizer: Tokenizer, prompt_tokens: int) -> str:
    """A user message that makes the first prompt `prompt_tokens` long: the filler text cut at a
    token edge, shortened by any excess when the cut text re-encodes longer."""
    framing = len(_first_prompt(tokenizer, ""))
    if prompt_tokens <= framing:
        raise BenchError(f"--prompt-tokens must exceed {framing}, the system message and the framing")
    filler = tokenizer.encode(OPENING * (prompt_tokens // 40 + 1))
    budget = prompt_tokens - framing
    while True:
        text = tokenizer.decode(filler[:budget])
        excess = len(_first_prompt(tokenizer, text)) - prompt_tokens
        if excess <= 0:
            return text
        budget -= excess


def make_plan(model: Path, *, prompt_tokens: int, turns: int, new_tokens: int) -> Plan:
    """The chat both engines run: the opening message of `prompt_tokens`, then short follow-ups,
    the history keeping a fixed reply to each earlier turn."""
    from gpt_oss_desktop.mlx_model import Chat, assistant_message, load_tokenizer

    if turns < 1:
        raise BenchError("--turns must be at least 1")
    tokenizer = load_tokenizer(model)
    users = [_opening_message(tokenizer, prompt_tokens)] + [FOLLOW_UPS[k % len(FOLLOW_UPS)] for k in range(turns - 1)]
    conversation = Chat(start_date=START_DATE)
    plan_turns: list[Turn] = []
    previous: list[int] = []
    for index, user in enumerate(users):
        conversation.add_user(user)
        prompt = _render(conversation, tokenizer)
        if prompt[: len(previous)] != previous:
            raise BenchError(f"turn {index + 1}'s prompt does not extend turn {index}'s")
        reply = REPLIES[index % len(REPLIES)]
        plan_turns.append(Turn(user, prompt, prompt[len(previous) :], reply))
        conversation.messages.append(assistant_message(reply))
        previous = prompt
    return Plan(str(model), new_tokens, plan_turns)


# -- one engine's run, in a process of its own ----------------------------------------------------


@dataclass(frozen=True)
class TurnResult:
    prompt_tokens: int
    prefilled_tokens: int  # prompt tokens actually computed (the rest came from the cache)
    new_tokens: int
    ttft_s: float
    decode_s: float  # from the first token to the last
    peak_mlx_bytes: int


@dataclass(frozen=True)
class RunResult:
    engine: str
    load_s: float
    import_rss_bytes: int  # the process after importing the engine's libraries, before loading
    peak_rss_bytes: int  # the whole process, loading included
    turns: list[TurnResult]

    @classmethod
    def from_dict(cls, raw: dict) -> RunResult:
        return cls(**{**raw, "turns": [TurnResult(**turn) for turn in raw["turns"]]})


@dataclass
class _TurnClock:
    """Wall-clock times of one turn's tokens as the caller receives them."""

    started: float = field(default_factory=time.perf_counter)
    token_times: list[float] = field(default_factory=list)

    def token(self, _token_id: int) -> None:
        self.token_times.append(time.perf_counter())

    def result(self, prompt_tokens: int, prefilled_tokens: int, peak_mlx_bytes: int) -> TurnResult:
        if not self.token_times:
            raise BenchError("a turn generated no token")
        return TurnResult(
            prompt_tokens=prompt_tokens,
            prefilled_tokens=prefilled_tokens,
            new_tokens=len(self.token_times),
            ttft_s=self.token_times[0] - self.started,
            decode_s=self.token_times[-1] - self.token_times[0],
            peak_mlx_bytes=peak_mlx_bytes,
        )


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. On Linux from VmHWM: ru_maxrss there keeps the
    parent's peak across fork and exec, so a worker would report the benchmark's own peak."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # macOS: bytes


def run_ours(plan: Plan) -> RunResult:
    """Our engine as the app drives it: one Chat, `Engine.reply` per turn, the prompt
    cache kept across turns; after each turn the history keeps the plan's fixed reply."""
    import mlx.core as mx

    from gpt_oss_desktop.mlx_model import Chat, Done, Engine, SamplingSettings, Stats, assistant_message

    import_rss = _peak_rss_bytes()
    started = time.perf_counter()
    engine = Engine.load(plan.model)
    load_s = time.perf_counter() - started
    sampling = SamplingSettings(temperature=0.0, max_new_tokens=plan.new_tokens)
    conversation = Chat(start_date=START_DATE)
    turns = []
    for number, turn in enumerate(plan.turns, 1):
        conversation.add_user(turn.user)
        history = len(conversation.messages)
        mx.reset_peak_memory()
        clock = _TurnClock()
        events = list(engine.reply(conversation, sampling, on_token=clock.token))
        done, stats = events[-1], next((e for e in events if isinstance(e, Stats)), None)
        if not isinstance(done, Done) or stats is None or done.reason in ("context_full", "error"):
            raise BenchError(f"turn {number}: our engine did not reply ({done})")
        if engine.last_prompt != turn.prompt:
            raise BenchError(f"turn {number}: our engine rendered a prompt other than the plan's")
        del conversation.messages[history:]
        conversation.messages.append(assistant_message(turn.reply))
        turns.append(clock.result(len(turn.prompt), stats.prompt_tokens - stats.cached_tokens, mx.get_peak_memory()))
    return RunResult("ours", load_s, import_rss, _peak_rss_bytes(), turns)


def run_mlx_lm(plan: Plan) -> RunResult:
    """mlx-lm as its own chat (mlx_lm/chat.py) drives it: one `make_prompt_cache` kept across
    turns and `stream_generate(prompt_cache=...)` fed only each turn's new tokens, here the same
    ids our engine prefills. Its cache never rewinds, so it also keeps its generated tokens."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.generate import stream_generate
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.sample_utils import make_sampler

    import_rss = _peak_rss_bytes()
    started = time.perf_counter()
    model, tokenizer = load(plan.model)
    load_s = time.perf_counter() - started
    cache = make_prompt_cache(model)
    greedy = make_sampler(temp=0.0)
    turns = []
    for turn in plan.turns:
        mx.reset_peak_memory()
        clock = _TurnClock()
        for response in stream_generate(
            model, tokenizer, turn.new_ids, max_tokens=plan.new_tokens, sampler=greedy, prompt_cache=cache
        ):
            clock.token(response.token)
        turns.append(clock.result(len(turn.prompt), len(turn.new_ids), mx.get_peak_memory()))
    return RunResult("mlx-lm", load_s, import_rss, _peak_rss_bytes(), turns)


WORKERS: dict[str, Callable[[Plan], RunResult]] = {"ours": run_ours, "mlx-lm": run_mlx_lm}


def run_worker(engine: str, plan_file: Path) -> RunResult:
    """One engine's chat in a fresh process, so peaks and caches never mix between engines."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--plan", str(plan_file)]
    finished = subprocess.run(command, check=False, capture_output=True, text=True)
    if finished.returncode != 0:
        raise BenchError(f"the {engine} run failed (exit {finished.returncode}):\n{finished.stderr[-4000:]}")
    return RunResult.from_dict(json.loads(finished.stdout.strip().splitlines()[-1]))


# -- summary --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    header: str
    higher_is_better: bool
    value: Callable[[RunResult], float]


def decode_tokens_per_s(run: RunResult) -> float:
    """Tokens after the first over the time they took, pooled over every turn."""
    seconds = sum(turn.decode_s for turn in run.turns)
    return sum(turn.new_tokens - 1 for turn in run.turns) / seconds if seconds else math.nan


GIB = 1024**3
METRICS = (
    Metric("prefill_tokens_per_s", "prefill tok/s", True, lambda r: r.turns[0].prefilled_tokens / r.turns[0].ttft_s),
    Metric("decode_tokens_per_s", "decode tok/s", True, decode_tokens_per_s),
    Metric("ttft_first_turn_s", "TTFT turn 1 s", False, lambda r: r.turns[0].ttft_s),
    Metric("ttft_last_turn_s", "TTFT turn {last} s", False, lambda r: r.turns[-1].ttft_s),
    Metric("peak_mlx_gib", "peak MLX GiB", False, lambda r: max(t.peak_mlx_bytes for t in r.turns) / GIB),
    Metric("peak_rss_gib", "peak RSS GiB", False, lambda r: r.peak_rss_bytes / GIB),
    Metric("load_s", "load s", False, lambda r: r.load_s),
)


def summarize(runs: list[RunResult]) -> dict[str, dict[str, float]]:
    """Per engine, each metric's median over the repeats."""
    summary = {}
    for engine in ENGINES:
        mine = [run for run in runs if run.engine == engine]
        if mine:
            summary[engine] = {m.key: statistics.median(m.value(run) for run in mine) for m in METRICS}
    return summary


def _figure(value: float) -> str:
    """Three significant digits, never in exponent form (0.0123, 1.23, 123, 1234)."""
    if not math.isfinite(value):
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"


def format_table(summary: dict[str, dict[str, float]], turns: int) -> str:
    """One row per engine, then the ours / mlx-lm ratios when both ran."""
    headers = [m.header.format(last=turns) for m in METRICS]
    rows = [[engine, *(_figure(values[m.key]) for m in METRICS)] for engine, values in summary.items()]
    if len(summary) == len(ENGINES):
        ours, peer = summary["ours"], summary["mlx-lm"]
        rows.append(["ours / mlx-lm", *(f"{ours[m.key] / peer[m.key]:.2f}" for m in METRICS)])
    widths = [max(len(cell) for cell in column) for column in zip(["engine", *headers], *rows)]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [["engine", *headers], *rows]]
    if len(summary) == len(ENGINES):
        better = ", ".join(m.header.format(last=turns) for m in METRICS if m.higher_is_better)
        lines.append(f"ratios above 1 favour ours for {better}; below 1 for the rest")
    return "\n".join(lines)


def describe_run(plan: Plan, runs: list[RunResult]) -> str:
    """What was measured, in words: the model, prompt sizes, how each engine carried the chat."""
    from gpt_oss_desktop.mlx_model import ModelConfig

    config = ModelConfig.from_folder(plan.model)
    first, last = plan.turns[0], plan.turns[-1]
    last_turn = len(plan.turns)
    ours_prefilled = sorted({run.turns[-1].prefilled_tokens for run in runs if run.engine == "ours"})
    lines = [
        (
            f"checkpoint {plan.model}: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
            f"{config.num_local_experts} experts (top {config.num_experts_per_tok}), vocabulary {config.vocab_size}"
        ),
        (
            f"{last_turn} turns, {plan.new_tokens} new tokens per turn (greedy); first prompt {len(first.prompt)} "
            f"tokens; turn {last_turn} prompt {len(last.prompt)} tokens, of which {len(last.new_ids)} new"
        ),
        (
            "ours: Engine.reply on one Chat, its prompt cache kept across turns "
            f"(prefilled at turn {last_turn}: {', '.join(map(str, ours_prefilled))} tokens)"
        ),
    ]
    if any(run.engine == "mlx-lm" for run in runs):
        lines.append(
            "mlx-lm: one make_prompt_cache kept across turns, stream_generate fed only each turn's new tokens "
            "(as mlx_lm.chat does), the same ids ours prefills; its cache never rewinds, so it also holds "
            f"its own earlier replies: {(last_turn - 1) * plan.new_tokens} more tokens of context at turn {last_turn}"
        )
    baseline = {run.engine: run.import_rss_bytes / GIB for run in runs}
    lines.append("RSS after imports, before loading: " + ", ".join(f"{e} {_figure(v)} GiB" for e, v in baseline.items()))
    counts = {run.engine: sorted({t.new_tokens for t in run.turns}) for run in runs}
    if any(count != [plan.new_tokens] for count in counts.values()):
        lines.append(f"note: a stop token ended some replies early; tokens per turn seen: {counts}")
    return "\n".join(lines)


# -- the command line ------------------------------------------------------------------------------


def random_checkpoint(shape: str, cache: Path = CACHE) -> Path:
    """A random checkpoint of `shape` in the Hub layout, written once and reused (the same seed
    and shards as bench/memory.py, so the two benchmarks share their folders)."""
    from gpt_oss_desktop.mlx_model import ModelConfig, tiny_config, write_random_checkpoint

    folder = cache / SHAPE_FOLDERS[shape]
    if folder.exists():
        if not (folder / "config.json").exists() or not (folder / "tokenizer.json").exists():
            raise BenchError(f"{folder} is incomplete (an interrupted write?): delete it and run again")
        return folder
    configs = {"mid": ModelConfig(num_hidden_layers=2), "tiny-window-128": tiny_config(sliding_window=128)}
    config = configs.get(shape, shape)
    cache.mkdir(parents=True, exist_ok=True)
    print(f"writing a random {shape} checkpoint to {folder} …", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        write_random_checkpoint(Path(scratch) / "model", config, seed=0, shards=3).rename(folder)
    return folder


def run_benchmark(model: Path, *, prompt_tokens: int, new_tokens: int, turns: int, repeats: int,
                  engines: tuple[str, ...] = ENGINES) -> tuple[Plan, list[RunResult]]:
    """Every engine `repeats` times, their order alternating so drifts in load hit both alike."""
    plan = make_plan(model, prompt_tokens=prompt_tokens, turns=turns, new_tokens=new_tokens)
    runs: list[RunResult] = []
    with tempfile.TemporaryDirectory() as scratch:
        plan_file = Path(scratch) / "plan.json"
        plan_file.write_text(json.dumps(asdict(plan)))
        for repeat in range(repeats):
            for engine in engines if repeat % 2 == 0 else engines[::-1]:
                run = run_worker(engine, plan_file)
                runs.append(run)
                print(
                    f"[{repeat + 1}/{repeats}] {engine}: TTFT {run.turns[0].ttft_s:.2f} s → {run.turns[-1].ttft_s:.2f} s, "
                    f"decode {_figure(decode_tokens_per_s(run))} tok/s",
                    file=sys.stderr,
                )
    return plan, runs


def machine() -> dict[str, str]:
    import mlx.core as mx

    versions = {"mlx": mx.__version__}
    if importlib.util.find_spec("mlx_lm"):
        from mlx_lm import __version__ as mlx_lm_version

        versions["mlx-lm"] = mlx_lm_version
    return {"platform": platform.platform(), "cpus": str(os.cpu_count()), "device": str(mx.default_device()), **versions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="a gpt-oss model folder (Hub layout)")
    source.add_argument("--shape", choices=list(SHAPE_FOLDERS), default="mid",
                        help="write (once, under ~/.cache) and use a random checkpoint of this shape; default mid")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="the first prompt's length, system message included")
    parser.add_argument("--tokens", type=int, default=6, help="new tokens per turn, for both engines")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the plan's sizes, every run and the medians here")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(asdict(WORKERS[args.worker](Plan.from_json(args.plan.read_text())))))
        return 0
    if args.tokens < 2 or args.repeats < 1:
        parser.error("--tokens must be at least 2 (decode speed needs two tokens) and --repeats at least 1")
    engines = ENGINES if importlib.util.find_spec("mlx_lm") else ("ours",)
    if len(engines) == 1:
        print("mlx-lm is not installed: measuring our engine alone, no ratios", file=sys.stderr)
    try:
        model = args.model.expanduser() if args.model else random_checkpoint(args.shape)
        plan, runs = run_benchmark(model, prompt_tokens=args.prompt_tokens, new_tokens=args.tokens,
                                   turns=args.turns, repeats=args.repeats, engines=engines)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = summarize(runs)
    print(describe_run(plan, runs))
    print(f"\nmedians of {args.repeats} runs per engine, engines alternating")
    print(format_table(summary, args.turns))
    if args.json:
        sizes = [{"prompt_tokens": len(t.prompt), "new_ids": len(t.new_ids)} for t in plan.turns]
        report = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                  "turns": sizes, "runs": [asdict(run) for run in runs], "medians": summary}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
