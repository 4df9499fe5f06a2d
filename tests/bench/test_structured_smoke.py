"""bench/structured.py on a random tiny model: both runs happen and the report has its figures.
It checks what the benchmark reports, never how fast anything is."""

from __future__ import annotations

import json
from pathlib import Path

from support.bench_script import load_bench_script

from gpt_oss_desktop.mlx_model.checkpoint_writer import write_random_checkpoint


def test_structured_bench_smoke(tmp_path: Path, capsys) -> None:
    module = load_bench_script("structured")
    model = write_random_checkpoint(tmp_path / "tiny", "tiny", seed=3)
    out = tmp_path / "report.json"
    assert module.main(["--model", str(model), "--tokens", "40", "--seeds", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["step_ms_unconstrained"] > 0 and report["step_ms_constrained"] > 0
    assert 0 < report["mask_host_ms_per_token"] < report["step_ms_constrained"] * 10
    assert 0 < report["mask_host_ms_per_token_alone"] < report["step_ms_constrained"] * 10
    assert set(report["mask_share_of_projected_20b_step"]) == set(module.PROJECTED_20B_STEP_MS)
    assert report["held_reasons"][0] in ("return", "max_tokens")
    assert 0 < report["masked_tokens"] <= report["sampled_tokens"]
    assert set(report["probe"]) == {"host_ms", "step_ms", "step_ratio", "median_wait_ms", "hidden_share"}
    printed = capsys.readouterr().out
    assert "of the projected 20b step" in printed and "overlap probe:" in printed
