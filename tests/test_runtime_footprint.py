"""What a user runs needs none of the development tools: the app and the terminal chat, each
started on the trained test model in a process of its own, never import the random-checkpoint
writer, the tokenizer-file writer or the kernel emulator (which drives a C++ toolchain)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.harmony_model import EXCHANGES, START_DATE

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT_TOOLS = ("gpt_oss_desktop.mlx_model.checkpoint_writer", "gpt_oss_desktop.mlx_model.tokenizer_writer",
                     "gpt_oss_desktop.metal.emulator")

RUN_AND_LIST_MODULES = """
import json, sys
from importlib import import_module
module, argv = sys.argv[1], json.loads(sys.argv[2])
code = import_module(module).main(argv)
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_entry_point(module: str, argv: list[str], tmp_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST_MODULES, module, json.dumps(argv)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def development_tools_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == tool or m.startswith(tool + ".") for tool in DEVELOPMENT_TOOLS)]


@pytest.mark.slow
def test_the_terminal_chat_answers_without_the_development_tools(harmony_model_dir: Path, tmp_path: Path) -> None:
    ran = run_entry_point("gpt_oss_desktop.mlx_model.cli", ["--model", str(harmony_model_dir), "--temperature", "0",
                                            "--start-date", START_DATE, "--prompt", EXCHANGES["sum"].question,
                                            "--json"], tmp_path)
    assert ran["code"] == 0 and "gpt_oss_desktop.mlx_model.engine" in ran["modules"]
    assert development_tools_in(ran["modules"]) == []


@pytest.mark.slow
def test_the_app_loads_a_model_and_quits_by_itself_without_the_development_tools(
    harmony_model_dir: Path, tmp_path: Path
) -> None:
    ran = run_entry_point("gpt_oss_desktop.app.main", ["--model", str(harmony_model_dir), "--quit-after-load"], tmp_path)
    assert ran["code"] == 0 and "gpt_oss_desktop.mlx_model.engine" in ran["modules"]
    assert development_tools_in(ran["modules"]) == []


@pytest.mark.slow
def test_quitting_after_a_failed_load_is_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    (tmp_path / "empty").mkdir()
    done = subprocess.run([sys.executable, "-m", "gpt_oss_desktop.app", "--model", str(tmp_path / "empty"), "--quit-after-load"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and "config.json is missing" in done.stderr
