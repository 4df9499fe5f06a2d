"""Imports flow one way, app → mlx_model: nothing under mlx_model imports Qt or the app, so the
engine and the terminal chat run without a GUI toolkit; and the app and bench/ use only what
mlx_model exports at its top level, its one public API."""

from __future__ import annotations

import ast
from pathlib import Path

from gpt_oss_desktop import mlx_model

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpt_oss_desktop" / "mlx_model"
APP = ROOT / "gpt_oss_desktop" / "app"
BENCH = ROOT / "bench"
ENGINE = "gpt_oss_desktop.mlx_model"
FORBIDDEN = ("PySide6", "shiboken6", "gpt_oss_desktop.app")


def imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_mlx_model_imports_neither_qt_nor_the_app():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    offending = {
        str(source.relative_to(PACKAGE)): sorted(m for m in imported_modules(source) if is_forbidden(m))
        for source in sources
    }
    assert {name: found for name, found in offending.items() if found} == {}


def uses_past_the_public_api(source: Path) -> list[str]:
    """What `source` takes from the engine package besides its top-level exports: a submodule import
    (`from gpt_oss_desktop.mlx_model.engine import …`, `import gpt_oss_desktop.mlx_model.hub`), a name
    that is not in `mlx_model.__all__`, or an attribute of the package that is not; also in the
    Python a benchmark runs in a child process from a string."""
    return _past_the_public_api(ast.parse(source.read_text(encoding="utf-8")))


def _past_the_public_api(tree: ast.AST) -> list[str]:
    public = set(mlx_model.__all__)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENGINE in node.value:
            try:
                found += _past_the_public_api(ast.parse(node.value))
            except SyntaxError:
                pass  # prose that names the package, not code
            continue
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.startswith(ENGINE + ".")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith(ENGINE + "."):
                found.append(f"from {node.module} import …")
            elif node.module == ENGINE:
                found += [f"from {ENGINE} import {a.name}" for a in node.names if a.name not in public]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "mlx_model":
            if node.attr not in public:
                found.append(f"mlx_model.{node.attr}")
    return found


def test_the_app_uses_only_the_public_api():
    sources = sorted(APP.rglob("*.py"))
    assert len(sources) > 10
    offending = {str(source.relative_to(ROOT)): uses_past_the_public_api(source) for source in sources}
    assert {name: found for name, found in offending.items() if found} == {}


def test_bench_uses_only_the_public_api():
    sources = sorted(BENCH.rglob("*.py"))
    assert len(sources) >= 4
    offending = {str(source.relative_to(ROOT)): uses_past_the_public_api(source) for source in sources}
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_public_api_check_catches_each_way_around_it(tmp_path):
    source = tmp_path / "reaching.py"
    source.write_text(
        "from gpt_oss_desktop import mlx_model\nimport gpt_oss_desktop.mlx_model.hub\n"
        "from gpt_oss_desktop.mlx_model.engine import Engine\n"
        "from gpt_oss_desktop.mlx_model import Engine, memory\nmlx_model.offload.PagingStats\nmlx_model.Chat\n"
        'CHILD = """\nfrom gpt_oss_desktop.mlx_model.forward import ForwardPass\n"""\n'
        'NOTE = "gpt_oss_desktop.mlx_model: the engine (prose, not code)"\n',
        encoding="utf-8",
    )
    assert sorted(uses_past_the_public_api(source)) == sorted([
        "import gpt_oss_desktop.mlx_model.hub", "from gpt_oss_desktop.mlx_model.engine import …",
        "from gpt_oss_desktop.mlx_model import memory", "mlx_model.offload",
        "from gpt_oss_desktop.mlx_model.forward import …",
    ])


def test_every_exported_name_exists():
    assert [name for name in mlx_model.__all__ if not hasattr(mlx_model, name)] == []
    assert len(set(mlx_model.__all__)) == len(mlx_model.__all__)
