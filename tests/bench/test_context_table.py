"""bench/context_table.py against README.md: the long-context memory table is the script's output."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- context_table.py: begin -->\n", "<!-- context_table.py: end -->"


def _script():
    spec = importlib.util.spec_from_file_location("bench_context_table", ROOT / "bench" / "context_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_shows_what_the_script_computes() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    table = _script().render()
    assert block == table, "run `python bench/context_table.py` and paste its output into README.md"
    assert "| 24 GB (16.1 GiB) | gpt-oss-20b | as published: 13.0 GiB | as published: 15.2 GiB | 131,072 |" in table
