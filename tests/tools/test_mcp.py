"""MCP: a server written here with the SDK's MCPServer, run over stdio by the real client."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from gpt_oss_desktop.mlx_model.tools import McpConfigError, Toolbox, load_mcp_config

SERVER = textwrap.dedent('''
    import os, sys, time
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("notes", instructions="Notes about the launch.")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def add(a: int, b: int = 2, note: str | None = None) -> int:
        """Adds two numbers."""
        return a + b

    @server.tool()
    def save(text: str) -> str:
        """Saves a note."""
        return "saved " + text

    @server.tool()
    def crash() -> str:
        """Ends the server process."""
        os._exit(3)

    @server.tool()
    def hang() -> str:
        """Never answers."""
        time.sleep(600)
        return "late"

    @server.tool()
    def fail() -> str:
        """Raises."""
        raise ValueError("no fuel")

    server.run("stdio")
''')


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "server.py").write_text(SERVER)
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"notes": {"command": sys.executable, "args": [str(tmp_path / "server.py")]},
                                               "broken": {"command": str(tmp_path / "missing-binary")}}}))
    return path


def text(box: Toolbox, name: str, arguments: str) -> str:
    message = box.call(f"functions.{name}", arguments)
    assert (message["name"], message["channel"], message["recipient"]) == (f"functions.{name}", "commentary", "assistant")
    return message["content"][0]["text"]


@pytest.mark.slow
def test_tools_are_listed_called_and_a_crash_or_hang_is_survived(config: Path) -> None:
    with Toolbox(python=False, mcp_config=config, tool_timeout_s=3.0) as box:
        states = {s.name: s.state for s in box.mcp.statuses()}
        assert states["notes"] == "running" and states["broken"].startswith("failed: ")
        functions = {f["name"]: f for f in box.functions()}
        assert set(functions) == {"add", "save", "crash", "hang", "fail"}
        assert functions["add"] == {
            "name": "add", "description": "Adds two numbers.",
            "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"default": 2, "type": "integer"},
                                                            "note": {"type": "string"}}, "required": ["a"]},
        }
        assert text(box, "add", '{"a": 2, "b": 3}') == "5"
        assert not box.needs_approval("functions.add") and box.needs_approval("functions.save")
        failed = box.run("functions.fail", "{}")
        assert not failed.ok and failed.text == "Error executing tool fail"  # the SDK keeps the traceback
        assert "not a JSON object" in text(box, "add", '{"a": ')
        crashed = text(box, "crash", "{}")
        assert "failed" in crashed and "restarted" in crashed
        assert text(box, "add", '{"a": 1}') == "3"  # restarted after the crash
        hung = text(box, "hang", "{}")
        assert "restarted" in hung
        assert text(box, "add", '{"a": 5, "b": 5}') == "10"
        assert text(box, "nothing", "{}") == '{"error": "Unknown function: nothing"}'


@pytest.mark.slow
def test_disabled_servers_and_tools_are_not_offered(config: Path) -> None:
    with Toolbox(python=False, mcp_config=config, mcp_disabled={"notes": {"crash", "hang"}, "broken": None}) as box:
        assert {f["name"] for f in box.functions()} == {"add", "save", "fail"}
        assert [s.name for s in box.mcp.statuses()] == ["notes"]


def test_config_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    for content, expected in (
        ("{", "not JSON"),
        ('{"servers": 3}', "needs an object `mcpServers`"),
        ('{"mcpServers": {"x": {"args": []}}}', "mcpServers.x needs a `command` (stdio) or a `url`"),
        ('{"mcpServers": {"x": {"command": "a", "args": [1]}}}', "mcpServers.x.args must be a list of strings"),
    ):
        path.write_text(content)
        with pytest.raises(McpConfigError, match=re.escape(expected)) as raised:
            load_mcp_config(path)
        assert str(path) in str(raised.value)
    path.write_text('{"servers": {"remote": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"A": "b"}}}}')
    (remote,) = load_mcp_config(path)
    assert (remote.url, dict(remote.headers)) == ("http://127.0.0.1:9/mcp", {"A": "b"})


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def http_server(tmp_path: Path):
    """The same server, over streamable HTTP on 127.0.0.1, as its own process."""
    import socket
    import subprocess
    import time

    port = _free_port()
    script = tmp_path / "http_server.py"
    script.write_text(SERVER.replace('server.run("stdio")', f'server.run("streamable-http", port={port})'))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    process.kill()
    process.wait()


@pytest.mark.slow
def test_a_streamable_http_server_is_listed_and_called_and_same_named_tools_keep_apart(
        config: Path, http_server: str, tmp_path: Path) -> None:
    both = tmp_path / "both.json"
    stdio = json.loads(config.read_text())["mcpServers"]["notes"]
    both.write_text(json.dumps({"mcpServers": {"remote": {"url": http_server}, "notes": stdio}}))
    with Toolbox(python=False, mcp_config=both, mcp_disabled={"notes": {"crash", "hang", "fail", "save"}}) as box:
        assert {s.name: s.state for s in box.mcp.statuses()} == {"remote": "running", "notes": "running"}
        names = {f["name"] for f in box.functions()}
        # `add` is on both servers, so each is named after its server; the others keep their names.
        assert names == {"remote__add", "notes__add", "save", "crash", "hang", "fail"}
        assert text(box, "remote__add", '{"a": 20, "b": 22}') == "42"
        assert text(box, "notes__add", '{"a": 1, "b": 1}') == "2"
        assert text(box, "save", '{"text": "over http"}') == "saved over http"
        assert box.needs_approval("functions.save") and not box.needs_approval("functions.remote__add")
