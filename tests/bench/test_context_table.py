"""bench/context_table.py against README.md: the long-context memory table is the script's output."""

from __future__ import annotations

from pathlib import Path

from support.bench_script import load_bench_script

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- context_table.py: begin -->\n", "<!-- context_table.py: end -->"


def test_the_readme_shows_what_the_script_computes() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    table = load_bench_script("context_table").render()
    assert block == table, "run `python bench/context_table.py` and paste its output into README.md"
    assert "| 24 GB (16.1 GiB) | gpt-oss-20b | as published: 13.0 GiB | as published: 15.2 GiB | 131,072 |" in table
