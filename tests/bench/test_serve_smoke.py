"""bench/serve.py end to end at its smallest: the servers (ours batched, ours one request at a
time, mlx-lm) started on the tiny trained model, one and two clients, one request each; the table
has their rows and the ratios, and all read the same prompt.
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
def test_both_servers_answer_and_the_ratios_are_printed(harmony_model_dir: Path, tmp_path: Path) -> None:
    serve = load_bench_script("serve")
    out = tmp_path / "serve.json"
    printed = StringIO()
    with redirect_stdout(printed):
        assert serve.main(["--model", str(harmony_model_dir), "--clients", "1,2", "--prefixes", "shared",
                           "--requests", "1", "--max-tokens", "8", "--json", str(out)]) == 0
    table = printed.getvalue()
    assert "ours / mlx-lm" in table and "ours / ours-b1" in table and " ours " in table and " mlx-lm " in table
    cases = json.loads(out.read_text())
    assert {(c["server"], c["clients"]) for c in cases} == {
        (server, clients) for server in ("ours", "ours-b1", "mlx-lm") for clients in (1, 2)}
    for case in cases:
        assert len(case["requests"]) == case["clients"] and case["requests_per_s"] > 0
        assert all(r["completion_tokens"] >= 1 and r["ttft_s"] > 0 for r in case["requests"])
    prompts = {c["server"]: sorted(r["prompt_tokens"] for r in c["requests"]) for c in cases if c["clients"] == 2}
    assert prompts["ours"] == prompts["ours-b1"] == prompts["mlx-lm"]  # the same prompt ids, by the chat template it writes
