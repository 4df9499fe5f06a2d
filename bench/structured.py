"""Constrained decoding's cost per decode step, against unconstrained decoding in the same run.

The mask is computed on the host while the device computes the next logits, so what it can cost a
step is its own host time: that is measured directly (every `next_mask` and `advance` call of the
structured decoder, at the real 201,088-token vocabulary) and compared with the decode step of
this run's model and with the projected gpt-oss-20b step on Apple GPUs (README: 9-13 tok/s on an
M1 up to 80-112 tok/s on a 32-core M4 Max with 8-bit dense weights; projections, not
measurements). Run under `flock /tmp/bench.lock`.

    python bench/structured.py --model FOLDER [--tokens 200] [--seeds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import mlx.core as mx

from gpt_oss_desktop.mlx_model import Chat, Engine, ResponseFormat, SamplingSettings, Stats
from gpt_oss_desktop.mlx_model.structured import StructuredDecoder

SCHEMA = {
    "type": "object",
    "properties": {
        "user": {"type": "object", "properties": {
            "name": {"type": "string", "pattern": "^[a-z]{1,6}$"},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "maxItems": 3, "items": {"enum": ["a", "b", "c"]}}},
            "required": ["name", "age", "tags"], "additionalProperties": False},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["user", "score"], "additionalProperties": False,
}
PROJECTED_20B_STEP_MS = {"M1, bf16 dense (13 tok/s)": 1000 / 13, "M4 Max 32-core, 8-bit dense (112 tok/s)": 1000 / 112}


class _Timed:
    """Host seconds spent in the structured decoder's calls."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def wrap(self, function):
        def timed(*args):
            started = time.perf_counter()
            try:
                return function(*args)
            finally:
                self.seconds.append(time.perf_counter() - started)
        return timed


def run(engine: Engine, seed: int, tokens: int, held: bool, timer: _Timed) -> tuple[Stats, str]:
    chat = Chat(start_date="2026-01-01")
    chat.add_user("Describe a user as JSON.")
    sampling = SamplingSettings(seed=seed, max_new_tokens=tokens, max_reasoning_tokens=tokens // 2 if held else None)
    response_format = ResponseFormat.json_schema(SCHEMA, name="user") if held else None
    events = list(engine.reply(chat, sampling, response_format=response_format))
    stats = next(e for e in events if isinstance(e, Stats))
    return stats, events[-1].reason


def measure(model: Path, tokens: int, seeds: int) -> dict:
    engine = Engine.load(model, context_length=4096)
    timer = _Timed()
    original = (StructuredDecoder.next_mask, StructuredDecoder.advance)
    StructuredDecoder.next_mask, StructuredDecoder.advance = timer.wrap(original[0]), timer.wrap(original[1])
    try:
        free, held, reasons = [], [], []
        for seed in range(seeds):
            free.append(run(engine, seed, tokens, False, timer)[0])
            stats, reason = run(engine, seed, tokens, True, timer)
            held.append(stats)
            reasons.append(reason)
    finally:
        StructuredDecoder.next_mask, StructuredDecoder.advance = original
    step_free = 1000 / statistics.mean(s.tokens_per_s for s in free)
    step_held = 1000 / statistics.mean(s.tokens_per_s for s in held)
    constrained_tokens = sum(s.new_tokens for s in held)
    mask_ms = 1000 * sum(timer.seconds) / max(constrained_tokens, 1)
    return {
        "model": str(model), "tokens": tokens, "seeds": seeds, "held_reasons": reasons,
        "step_ms_unconstrained": step_free, "step_ms_constrained": step_held,
        "step_ratio": step_held / step_free,
        "mask_host_ms_per_token": mask_ms,
        "mask_share_of_this_step": mask_ms / step_free,
        "mask_share_of_projected_20b_step": {name: mask_ms / ms for name, ms in PROJECTED_20B_STEP_MS.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    mx.random.seed(0)
    report = measure(args.model, args.tokens, args.seeds)
    print(f"decode step: unconstrained {report['step_ms_unconstrained']:.2f} ms, constrained "
          f"{report['step_ms_constrained']:.2f} ms ({report['step_ratio']:.3f}x), replies: {report['held_reasons']}")
    print(f"mask host time {report['mask_host_ms_per_token']:.3f} ms/token = "
          f"{report['mask_share_of_this_step']:.1%} of this model's step")
    for name, share in report["mask_share_of_projected_20b_step"].items():
        print(f"  = {share:.2%} of the projected 20b step, {name} (projection)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
