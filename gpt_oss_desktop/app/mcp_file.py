"""The app's MCP servers, kept in an `mcp.json` in the data folder in the usual `mcpServers` shape
(Claude Desktop's, Cursor's, LM Studio's), so the file can be read, edited or shared as is.

Settings › Tools adds, edits and removes entries here and imports them from another app's file;
entries keep any fields this app does not use. Every write is checked by the engine's own reader
(mlx_model.load_mcp_config) first, so the file never holds what the engine would refuse.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from gpt_oss_desktop.mlx_model import McpConfigError, load_mcp_config


def read_servers(path: Path) -> dict[str, dict[str, Any]]:
    """The servers in `path` by name ({} when there is no file yet); McpConfigError names a
    damaged file and the field."""
    if not path.exists():
        return {}
    load_mcp_config(path)  # validates, naming the file and the field
    data = json.loads(path.read_text(encoding="utf-8"))
    return dict(data.get("mcpServers", data.get("servers", {})))


def write_servers(path: Path, servers: dict[str, dict[str, Any]]) -> None:
    """Replace the servers in `path` (other top-level fields kept), atomically."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            data = {}
    data = data if isinstance(data, dict) else {}
    data.pop("servers", None)
    data["mcpServers"] = servers
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".mcp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        load_mcp_config(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def server_entry(command_line: list[str], url: str, env: dict[str, str],
                 previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """A server's entry from what Settings asks for: a command line (stdio) or a URL
    (streamable HTTP), and environment variables; fields of `previous` it does not set are kept."""
    entry = {k: v for k, v in (previous or {}).items() if k not in ("command", "args", "env", "url", "headers")}
    if url.strip():
        entry["url"] = url.strip()
        if previous and isinstance(previous.get("headers"), dict):
            entry["headers"] = previous["headers"]
    elif command_line:
        entry["command"], entry["args"] = command_line[0], command_line[1:]
        if env:
            entry["env"] = env
    else:
        raise McpConfigError("a server needs a command to run or the URL of a streamable HTTP server")
    return entry
