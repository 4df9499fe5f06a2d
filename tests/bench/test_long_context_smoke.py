"""bench/long_context.py end to end on the tiny shape: a real prefill and a fill, both engines,
sane figures in the table and the JSON. It checks what the benchmark reports, never how fast."""

from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO

import pytest
from support.bench_script import load_bench_script

pytest.importorskip("mlx_lm")


long_context = load_bench_script("long_context")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[str, dict]:
    """256 positions prefilled for real, 1024 filled with 64 real on top, on each engine."""
    tiny = long_context.random_checkpoint("tiny", cache=tmp_path_factory.mktemp("bench-models"))
    out = tmp_path_factory.mktemp("long") / "long.json"
    argv = ["--model", str(tiny), "--lengths", "1024,256", "--prefill-max", "256", "--fill-tokens", "64",
            "--json", str(out)]
    printed = StringIO()
    with redirect_stdout(printed):
        assert long_context.main(argv) == 0
    return printed.getvalue(), json.loads(out.read_text())


def test_the_json_has_both_engines_at_each_length_with_positive_figures(report):
    _, saved = report
    runs = {(run["engine"], run["length"]): run for run in saved["runs"]}
    assert runs.keys() == {(e, n) for e in ("ours", "mlx-lm") for n in (256, 1024)}
    for (engine, length), run in runs.items():
        assert "failed" not in run, (engine, length)
        assert run["mode"] == ("prefill" if length == 256 else "fill")
        assert run["prefilled"] == (256 if length == 256 else 64)
        assert run["seconds"] > 0 and run["peak_mlx_bytes"] > 0 and run["peak_rss_bytes"] > run["peak_mlx_bytes"] / 4


def test_the_table_has_a_row_per_length_with_ratios(report):
    printed, _ = report
    lines = printed.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["positions", "mode"])
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in ("256", "1024")}
    assert rows.keys() == {"256", "1024"}
    assert rows["256"][1:3] == ["prefill", "256"] and rows["1024"][1:3] == ["fill", "64"]
    assert "ours/mlx-lm time" in header and "mlx-lm peak GiB" in header
    for cells in rows.values():
        figures = [float(cell) for cell in cells[3:]]
        assert len(figures) == 13 and all(figure > 0 for figure in figures)
    assert float(rows["256"][8]) == 1.0 and float(rows["256"][10]) == 1.0  # the first length is the baseline
