"""bench/speed.py end to end on the tiny shape: both engines' rows, sane figures, the same prompt
ids prefilled by both. It checks what the benchmark reports, never how fast anything is."""

from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
from support.bench_script import load_bench_script

pytest.importorskip("mlx_lm")


speed = load_bench_script("speed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return speed.random_checkpoint("tiny", cache=tmp_path_factory.mktemp("bench-models"))


@pytest.fixture(scope="module")
def report(tiny, tmp_path_factory) -> tuple[str, dict]:
    """One run of the command line: 2 turns of 3 tokens on each engine."""
    out = tmp_path_factory.mktemp("speed") / "speed.json"
    argv = ["--model", str(tiny), "--prompt-tokens", "90", "--tokens", "3", "--turns", "2", "--repeats", "1", "--json", str(out)]
    printed = StringIO()
    with redirect_stdout(printed):
        assert speed.main(argv) == 0
    return printed.getvalue(), json.loads(out.read_text())


def test_the_table_has_a_row_per_engine_and_the_ratios(report):
    printed, _ = report
    rows = {line.split("  ")[0].strip(): line for line in printed.splitlines()}
    assert {"engine", "ours", "mlx-lm", "ours / mlx-lm"} <= rows.keys()
    assert "TTFT turn 2 s" in rows["engine"]
    for name in ("ours", "mlx-lm", "ours / mlx-lm"):
        figures = [float(cell) for cell in rows[name].removeprefix(name).split()]
        assert len(figures) == len(speed.METRICS)
        assert all(figure > 0 for figure in figures)


def test_the_json_holds_every_run_and_positive_medians(report):
    _, saved = report
    assert sorted(run["engine"] for run in saved["runs"]) == ["mlx-lm", "ours"]
    for medians in saved["medians"].values():
        assert set(medians) == {metric.key for metric in speed.METRICS}
        assert all(value > 0 for value in medians.values())
    for run in saved["runs"]:
        assert run["peak_rss_bytes"] >= run["import_rss_bytes"] > 0
        for turn in run["turns"]:
            assert 1 <= turn["new_tokens"] <= 3
            assert turn["ttft_s"] > 0 and turn["decode_s"] >= 0 and turn["peak_mlx_bytes"] > 0


def test_both_engines_prefill_the_same_new_ids_at_the_second_turn(report):
    """Ours reuses its cache for the first turn; mlx-lm is fed exactly the ids ours computes."""
    _, saved = report
    first, second = saved["turns"]
    assert first == {"prompt_tokens": 90, "new_ids": 90}
    assert second["new_ids"] < second["prompt_tokens"]
    for run in saved["runs"]:
        assert [turn["prefilled_tokens"] for turn in run["turns"]] == [90, second["new_ids"]]


def test_the_plan_extends_each_prompt_and_sizes_the_first(tiny):
    plan = speed.make_plan(tiny, prompt_tokens=120, turns=6, new_tokens=2)
    assert len(plan.turns[0].prompt) == 120
    for before, after in zip(plan.turns, plan.turns[1:]):
        assert after.prompt == before.prompt + after.new_ids
    with pytest.raises(speed.BenchError, match="must exceed"):
        speed.make_plan(tiny, prompt_tokens=20, turns=1, new_tokens=2)
