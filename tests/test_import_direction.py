"""Imports flow one way, app → mlx_model: nothing under mlx_model imports Qt or the app, so the
engine and the terminal chat run without a GUI toolkit."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mlx_model"
FORBIDDEN = ("PySide6", "shiboken6", "app")


def imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_mlx_model_imports_neither_qt_nor_the_app():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    offending = {
        str(source.relative_to(PACKAGE)): sorted(m for m in imported_modules(source) if m.split(".")[0] in FORBIDDEN)
        for source in sources
    }
    assert {name: found for name, found in offending.items() if found} == {}
