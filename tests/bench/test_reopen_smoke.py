"""bench/reopen.py end to end at a tiny length: the reopened answer reuses the saved history
(on ours and on mlx-lm), and the table prints positive figures for each engine.
It checks what the benchmark reports, never how fast anything is."""

from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
from support.bench_script import load_bench_script

pytest.importorskip("mlx_lm")


@pytest.mark.slow
def test_the_reopened_chat_reuses_its_history_and_the_table_has_positive_figures(tmp_path: Path) -> None:
    reopen = load_bench_script("reopen")
    model = reopen.random_checkpoint("tiny-window-128", cache=tmp_path / "bench-models")
    out = tmp_path / "reopen.json"
    printed = StringIO()
    with redirect_stdout(printed):
        assert reopen.main(["--model", str(model), "--lengths", "300", "--tokens", "2", "--json", str(out)]) == 0

    results = json.loads(out.read_text())["results"]["300"]
    assert set(results) == {"ours", "mlx-lm"}
    ours, peer = results["ours"], results["mlx-lm"]
    assert ours["history_tokens"] == 300  # the long message sized the history's prompt
    assert 300 <= ours["cached_tokens"] == peer["cached_tokens"] < ours["prompt_tokens"] == peer["prompt_tokens"]
    assert ours["runs"]["cold"][0]["cached_tokens"] == 0  # the cold answer read nothing saved

    lines = printed.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["history", "tok"])
    rows = {line.split()[1]: line.split() for line in lines[header + 1: header + 3]}
    assert set(rows) == {"ours", "mlx-lm"}
    for row in rows.values():
        figures = [float(cell) for i, cell in enumerate(row) if i != 1]
        assert len(figures) == len(reopen.HEADERS) - 1 and all(figure > 0 for figure in figures)
