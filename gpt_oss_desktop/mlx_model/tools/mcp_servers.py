"""MCP servers as harmony function tools, through the official `mcp` SDK.

Servers come from an `mcp.json` in the `mcpServers` shape Claude Desktop, Cursor and LM Studio
read (`command`/`args`/`env`/`cwd` for stdio, `url`/`headers` for streamable HTTP; VS Code's
`servers` with `type` too). Each server lives in one task of a private asyncio loop on a
background thread, so its session is opened and closed in the same task as the SDK requires;
calls cross over with a timeout. A server that fails to start, crashes or hangs is marked with
the reason and started again on the next call, and the call's reply says what happened.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as mcp_types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

START_TIMEOUT_S = 30.0
_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_]")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class McpConfigError(ValueError):
    """An `mcp.json` that cannot be used; the text names the file and the field."""


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def load_mcp_config(path: Path) -> list[ServerConfig]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise McpConfigError(f"{path}: cannot be read ({error.strerror or error})") from error
    except json.JSONDecodeError as error:
        raise McpConfigError(f"{path}: not JSON ({error})") from error
    servers = data.get("mcpServers", data.get("servers")) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(f"{path}: needs an object `mcpServers` mapping server names to their settings")
    return [_server(path, name, entry) for name, entry in servers.items()]


def _server(path: Path, name: str, entry: Any) -> ServerConfig:
    where = f"{path}: mcpServers.{name}"
    if not isinstance(entry, dict):
        raise McpConfigError(f"{where} must be an object")

    def strings(key: str, kind: type) -> Any:
        value = entry.get(key, kind())
        ok = all(isinstance(v, str) for v in (value.values() if isinstance(value, dict) else value))
        if not isinstance(value, kind) or not ok:
            raise McpConfigError(f"{where}.{key} must be {'a list' if kind is list else 'an object'} of strings")
        return value

    if isinstance(entry.get("command"), str):
        return ServerConfig(name, command=entry["command"], args=tuple(strings("args", list)),
                            env=strings("env", dict), cwd=entry.get("cwd"))
    if isinstance(entry.get("url"), str):
        return ServerConfig(name, url=entry["url"], headers=strings("headers", dict))
    raise McpConfigError(f"{where} needs a `command` (stdio) or a `url` (streamable HTTP)")


def trimmed_schema(schema: Any) -> Any:
    """A JSON Schema as harmony renders it well: no `title`s, no null defaults, and
    `anyOf` of plain types (null dropped) as one `type` list."""
    if isinstance(schema, list):
        return [trimmed_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key == "title" or (key == "default" and value is None):
            continue
        result[key] = trimmed_schema(value)
    any_of = result.get("anyOf")
    if isinstance(any_of, list) and all(isinstance(o, dict) and set(o) == {"type"} for o in any_of):
        types = [o["type"] for o in any_of if o["type"] != "null"]
        del result["anyOf"]
        result["type"] = types[0] if len(types) == 1 else types
    return result


def _resolve_refs(schema: Any, definitions: Mapping[str, Any], depth: int = 0) -> Any:
    """Inline `$ref`s to `$defs` (harmony's TypeScript rendering does not follow them)."""
    if depth > 8:
        return {}
    if isinstance(schema, list):
        return [_resolve_refs(item, definitions, depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve_refs(definitions.get(ref.removeprefix("#/$defs/"), {}), definitions, depth + 1)
    return {k: _resolve_refs(v, definitions, depth) for k, v in schema.items() if k != "$defs"}


def function_name(server: str, tool: str, unique: bool = False) -> str:
    """The harmony function name of a server's tool: the tool's own name when it is a plain
    identifier no other server's tool has (as the model would name it), else `{server}__{tool}`."""
    if unique and _PLAIN_NAME.fullmatch(tool):
        return tool
    return _NAME_CHARACTERS.sub("_", f"{server}__{tool}")


@dataclass
class ServerStatus:
    """What Settings shows for a server: running or why not, and its tools."""

    name: str
    state: str = "not started"  # "running", "not started", or "failed: …"
    tools: list[mcp_types.Tool] = field(default_factory=list)


class _Server:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.status = ServerStatus(config.name)
        self.session: ClientSession | None = None
        self.task: asyncio.Task | None = None
        self.stop: asyncio.Event | None = None


class McpServers:
    """The configured servers, their tools as harmony functions (`{server}__{tool}`), calls."""

    def __init__(self, configs: list[ServerConfig], disabled: Mapping[str, set[str] | None] | None = None,
                 timeout_s: float = 60.0) -> None:
        """`disabled`: server name → the tool names turned off, or None for the whole server."""
        self.timeout_s = timeout_s
        self._disabled = dict(disabled or {})
        self._servers = {c.name: _Server(c) for c in configs if self._disabled.get(c.name, set()) is not None}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-servers", daemon=True)
        self._thread.start()
        self._names: dict[str, tuple[str, str]] = {}
        for server in self._servers.values():
            self._ensure_started(server)

    # -- declarations --------------------------------------------------------------------------

    def statuses(self) -> list[ServerStatus]:
        return [server.status for server in self._servers.values()]

    def functions(self) -> list[dict[str, Any]]:
        functions = []
        self._names.clear()
        offered = [(server, tool) for server in self._servers.values() for tool in server.status.tools
                   if tool.name not in (self._disabled.get(server.config.name) or set())]
        counts = Counter(tool.name for _server, tool in offered)
        for server, tool in offered:
            name = function_name(server.config.name, tool.name, unique=counts[tool.name] == 1)
            self._names[name] = (server.config.name, tool.name)
            schema = tool.input_schema or {"type": "object", "properties": {}}
            parameters = trimmed_schema(_resolve_refs(schema, schema.get("$defs", {})))
            functions.append({"name": name, "description": tool.description or tool.title or tool.name,
                              "parameters": parameters})
        return functions

    def has(self, name: str) -> bool:
        if not self._names:
            self.functions()
        return name in self._names

    def origin(self, name: str) -> tuple[str, str] | None:
        """(server, tool on it) that the function `name` calls, or None."""
        return self._names[name] if self.has(name) else None

    def read_only(self, name: str) -> bool:
        server_name, tool_name = self._names.get(name, ("", ""))
        server = self._servers.get(server_name)
        tool = next((t for t in server.status.tools if t.name == tool_name), None) if server else None
        return bool(tool and tool.annotations and tool.annotations.read_only_hint)

    # -- calls ---------------------------------------------------------------------------------

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """The reply text and whether the call worked; failures are described, never raised."""
        if not self.has(name):
            return json.dumps({"error": f"Unknown function: {name}"}), False
        server_name, tool_name = self._names[name]
        server = self._servers[server_name]
        if server.session is None:
            self._ensure_started(server)
            if server.session is None:
                return f"[ERROR] The MCP server `{server_name}` is not running ({server.status.state}).", False
        future = asyncio.run_coroutine_threadsafe(
            server.session.call_tool(tool_name, arguments, read_timeout_seconds=self.timeout_s), self._loop)
        try:
            result = future.result(timeout=self.timeout_s + 5)
        except TimeoutError:
            future.cancel()
            self._restart(server, f"failed: no answer within {self.timeout_s:g} s")
            return (f"[ERROR] The MCP server `{server_name}` did not answer within {self.timeout_s:g} seconds; "
                    "it was restarted."), False
        except Exception as error:  # the SDK raises MCPError, closed streams, timeouts
            self._restart(server, f"failed: {error or type(error).__name__}")
            return f"[ERROR] The MCP server `{server_name}` failed: {error or type(error).__name__}; it was restarted.", False
        return _result_text(result), not getattr(result, "is_error", False)

    # -- server lifetime -----------------------------------------------------------------------

    def _ensure_started(self, server: _Server) -> None:
        ready = asyncio.run_coroutine_threadsafe(self._start(server), self._loop)
        try:
            ready.result(timeout=START_TIMEOUT_S + 5)
        except Exception as error:  # reported in the status; the tools are then simply absent
            server.status.state = f"failed: {error or type(error).__name__}"

    async def _start(self, server: _Server) -> None:
        if server.task is not None and not server.task.done():
            return
        started: asyncio.Future = self._loop.create_future()
        server.stop = asyncio.Event()
        server.task = self._loop.create_task(self._serve(server, started))
        await asyncio.wait_for(asyncio.shield(started), START_TIMEOUT_S)

    async def _serve(self, server: _Server, started: asyncio.Future) -> None:
        try:
            async with AsyncExitStack() as stack:
                streams = await stack.enter_async_context(self._transport(server.config, stack))
                session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
                await session.initialize()
                tools: list[mcp_types.Tool] = []
                cursor = None
                while True:
                    page = await session.list_tools(params=mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                    tools += page.tools
                    cursor = page.next_cursor
                    if not cursor:
                        break
                server.session, server.status.tools, server.status.state = session, tools, "running"
                started.set_result(None)
                await server.stop.wait()
        except Exception as error:  # noqa: BLE001 — any failure becomes the server's status
            server.status.state = f"failed: {error or type(error).__name__}"
            if not started.done():
                started.set_exception(RuntimeError(server.status.state.removeprefix("failed: ")))
        finally:
            server.session = None
            if server.status.state == "running":
                server.status.state = "stopped"

    def _transport(self, config: ServerConfig, stack: AsyncExitStack):
        if config.command is not None:
            parameters = StdioServerParameters(command=config.command, args=list(config.args), env=dict(config.env) or None,
                                               cwd=config.cwd)
            return stdio_client(parameters, errlog=_discard())
        client = httpx2.AsyncClient(headers=dict(config.headers), timeout=httpx2.Timeout(30.0, read=300.0),
                                    follow_redirects=True)
        stack.push_async_callback(client.aclose)
        return streamable_http_client(config.url, http_client=client)

    def _restart(self, server: _Server, reason: str) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(server), self._loop).result(timeout=15)
        server.status.state = reason
        self._ensure_started(server)

    async def _stop(self, server: _Server) -> None:
        if server.task is None:
            return
        server.stop.set()
        try:
            await asyncio.wait_for(server.task, 5)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 — a stuck server is cancelled
            server.task.cancel()
        server.task = None

    def close(self) -> None:
        async def stop_all() -> None:
            for server in self._servers.values():
                await self._stop(server)
        try:
            asyncio.run_coroutine_threadsafe(stop_all(), self._loop).result(timeout=20)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


def _discard():
    """Where a stdio server's stderr goes: nowhere the user's terminal shows."""
    return open("/dev/null", "w")  # noqa: SIM115 — kept open as long as the process lives


def _result_text(result: Any) -> str:
    """A tool result as text: its text blocks joined, else the structured content as JSON;
    images and other media as a placeholder the model can read."""
    parts = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {block.mime_type}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {block.uri}]")
        elif kind == "resource":
            parts.append(getattr(block.resource, "text", None) or f"[resource: {block.resource.uri}]")
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts) if parts else "[no content]"
