"""CI: the built wheel, installed alone into a fresh virtual environment, starts the app, the
terminal chat and the server on the trained test model, and its top-level packages collide with
no other distribution's.

Run by .ci/run after the tests (the test model is cached by then) with the development
environment's Python: `python .ci/installed_wheel.py`. The fresh environment gets the wheel and
its runtime dependencies from the package index (pip's cache makes that quick); none of the test
tools (torch, transformers, mlx-lm) may come with them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_ONLY = ("torch", "transformers", "mlx_lm", "openai_harmony", "pytest")
"""Imports of the test extra: the installed app must run without them."""

TOP_LEVEL_NAMES = r"""
import importlib.metadata as metadata, json, sys
ours = set(json.loads(sys.argv[1]))
clashes = {}
for dist in metadata.distributions():
    if dist.metadata["Name"].lower().replace("_", "-") == "gpt-oss-desktop":
        continue
    tops = {str(f).split("/")[0].removesuffix(".py") for f in dist.files or ()}
    if tops & ours:
        clashes[dist.metadata["Name"]] = sorted(tops & ours)
print(json.dumps(clashes))
"""


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    print("+", " ".join(part if len(part) < 200 else part.split("\n")[1] + " …" for part in command), flush=True)
    done = subprocess.run(command, text=True, capture_output=True, **options)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def top_level_packages(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/")[0] for name in archive.namelist() if ".dist-info/" not in name}


def assert_no_clashes(python: str, ours: set[str], where: str) -> None:
    clashes = json.loads(run([python, "-c", TOP_LEVEL_NAMES, json.dumps(sorted(ours))]).stdout)
    if clashes:
        sys.exit(f"{where}: other distributions install our top-level packages: {clashes}")
    print(f"{where}: no other distribution installs {sorted(ours)}")


def trained_test_model():
    """The tests' trained harmony model (cached by the test run) and the exchanges it learned."""
    sys.path.insert(0, str(REPO / "tests"))
    from support.harmony_model import EXCHANGES, START_DATE, trained_harmony_model

    return trained_harmony_model(), EXCHANGES["sum"], START_DATE


def main() -> int:
    model, exchange, start_date = trained_test_model()
    with tempfile.TemporaryDirectory(prefix="installed-wheel-") as scratch:
        work = Path(scratch)
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "dist"), str(REPO)])
        (wheel,) = (work / "dist").glob("gpt_oss_desktop-*.whl")
        ours = top_level_packages(wheel)
        if ours != {"gpt_oss_desktop"}:
            sys.exit(f"{wheel.name} installs {sorted(ours)}, expected gpt_oss_desktop alone")
        with zipfile.ZipFile(wheel) as archive:
            shipped = set(archive.namelist())
        missing = [str(path.relative_to(REPO)) for path in (REPO / "assets").rglob("*")
                   if path.is_file() and f"gpt_oss_desktop/app/{path.relative_to(REPO)}" not in shipped]
        if missing:
            sys.exit(f"{wheel.name} lacks the assets {missing}")

        run([sys.executable, "-m", "venv", str(work / "venv")])
        bin_dir = work / "venv" / "bin"
        python = str(bin_dir / "python")
        run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)])
        # Away from the checkout and with no PYTHONPATH, only the installed packages are importable.
        env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(QT_QPA_PLATFORM="offscreen", GPT_OSS_DESKTOP_DATA_DIR=str(work / "data"),
                   XDG_CONFIG_HOME=str(work / "config"), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
        where = run([python, "-c", "from gpt_oss_desktop import app, metal, mlx_model; "
                     "print(app.__file__, metal.__file__, mlx_model.__file__)"],
                    cwd=work, env=env).stdout.split()
        if not all(Path(path).is_relative_to(work / "venv") for path in where):
            sys.exit(f"the fresh environment imports code from outside it: {where}")
        present = run([python, "-c", "import importlib.util, sys; "
                       "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))", *TEST_ONLY],
                      cwd=work, env=env).stdout.split()
        if present:
            sys.exit(f"installing the wheel pulled test-only packages: {present}")
        assert_no_clashes(python, ours, "the fresh environment")
        assert_no_clashes(sys.executable, ours, "the development environment")

        run([str(bin_dir / "gpt-oss-desktop"), "--model", str(model), "--quit-after-load"], cwd=work, env=env,
            timeout=600)
        print("gpt-oss-desktop started offscreen, loaded the test model and quit")
        answer = run([str(bin_dir / "gpt-oss-chat"), "--model", str(model), "--temperature", "0", "--start-date",
                      start_date, "--reasoning", "high", "--prompt", exchange.question], cwd=work, env=env,
                     timeout=600).stdout
        expected = f"Thinking: {exchange.analysis}\n\n{exchange.final}\n"
        if answer != expected:
            sys.exit(f"gpt-oss-chat answered {answer!r}, expected {expected!r}")
        print(f"gpt-oss-chat answered {exchange.question!r} with {exchange.final!r}")
        served = serve_one_request(bin_dir / "gpt-oss-serve", model, exchange.question, cwd=work, env=env)
        print(f"gpt-oss-serve answered a chat completion ({served} tokens) and stopped on SIGTERM")
    return 0


def serve_one_request(command: Path, model: Path, question: str, **options) -> int:
    """Start the installed server, ask it one chat completion, stop it as a service manager does;
    the tokens it generated."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(command), "--model", str(model), "--port", str(port)], text=True,
                              stderr=subprocess.PIPE, **options)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"gpt-oss-serve did not start: {server.stderr.read()}")
                time.sleep(0.2)
        body = json.dumps({"model": model.name, "temperature": 0, "max_tokens": 32,
                           "messages": [{"role": "user", "content": question}]}).encode()
        request = urllib.request.Request(f"{url}/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            completion = json.load(response)
        if not completion["choices"][0]["message"]["content"]:
            sys.exit(f"gpt-oss-serve answered with no content: {completion}")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=300)
    if code != 0:
        sys.exit(f"gpt-oss-serve exited with {code} on SIGTERM: {server.stderr.read()}")
    return completion["usage"]["completion_tokens"]


if __name__ == "__main__":
    raise SystemExit(main())
