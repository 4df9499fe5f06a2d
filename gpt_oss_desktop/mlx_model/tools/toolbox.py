"""The tools a chat offers the model, declared once and called by recipient.

`Toolbox.call("browser.search", '{"query": "…"}')` returns the tool's reply as an openai-harmony
message dict: authored by the recipient the model addressed, to the assistant, on the call's
channel. Nothing here raises for a bad call: arguments that do not parse, an unknown tool, a
failing or hanging tool all come back as a reply that says what went wrong.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import paths
from ..harmony import tool_result_message
from ..harmony.builtin_tools import BROWSER_NAMESPACE
from .browser.library import Library
from .browser.tool import Browser, Citation
from .browser.web import SearchProvider, Web
from .python_kernel import Image, PythonKernel
from .sandbox import DEFAULT_LIMITS, Limits, SandboxUnavailable

_BROWSER_ARGUMENTS = {
    tool["name"]: set(tool["parameters"]["properties"]) for tool in BROWSER_NAMESPACE["tools"]
}


@dataclass(frozen=True)
class FunctionTool:
    """A function the app or a script provides: called with the parsed JSON arguments, its
    return value (str, or anything JSON) is the reply."""

    name: str
    description: str
    parameters: dict[str, Any] | None
    run: Callable[[dict[str, Any]], Any]
    read_only: bool = True


@dataclass(frozen=True)
class ToolOutcome:
    message: dict[str, Any]  # the tool's reply, an openai-harmony message dict
    seconds: float
    ok: bool  # False when the reply reports a failure (bad arguments, tool error, timeout)
    images: tuple[Image, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        return self.message["content"][0]["text"]


def reply_message(recipient: str, text: str, channel: str | None = None) -> dict[str, Any]:
    """A tool's reply as the model was trained on: authored by the recipient it called, to the
    assistant, on the call's channel (built-ins default to analysis, functions to commentary)."""
    default = "commentary" if recipient.startswith("functions.") else "analysis"
    return tool_result_message(recipient, text, channel=channel or default)


def _error(text: str) -> str:
    return json.dumps({"error": text})


class Toolbox:
    """One chat's tools. `library`: folders the browser searches offline; `web`: let the browser
    fetch pages (and search, given `search_provider`); `python`: a sandboxed kernel started on
    first use in `python_folder`; `mcp_config`: an `mcp.json` with `mcpServers`."""

    def __init__(
        self,
        library: Sequence[str | Path] = (),
        web: bool = False,
        python: bool = True,
        mcp_config: str | Path | None = None,
        *,
        index_path: Path | None = None,
        search_provider: SearchProvider | None = None,
        python_folder: Path | None = None,
        python_limits: Limits = DEFAULT_LIMITS,
        python_timeout_s: float = 120.0,
        browser_state: dict | None = None,
        mcp_disabled: dict[str, set[str] | None] | None = None,
        tool_timeout_s: float = 60.0,
    ) -> None:
        self._library = Library(library, index_path or paths.data_dir() / "library-index.sqlite3") if library else None
        self._web = Web(search_provider) if web else None
        self.browser = Browser(self._library, self._web, browser_state) if (self._library or self._web) else None
        self._python_folder = python_folder or paths.data_dir() / "python" / "default"
        self._python_limits, self._python_timeout_s = python_limits, python_timeout_s
        self._kernel = self.new_kernel(self._python_folder) if python else None
        self.mcp = None
        if mcp_config:
            from .mcp_servers import McpServers, load_mcp_config  # the SDK takes half a second to import

            self.mcp = McpServers(load_mcp_config(Path(mcp_config)), disabled=mcp_disabled or {},
                                  timeout_s=tool_timeout_s)
        self._functions: dict[str, FunctionTool] = {}

    # -- declarations --------------------------------------------------------------------------

    @property
    def has_browser(self) -> bool:
        return self.browser is not None

    @property
    def has_python(self) -> bool:
        return self._kernel is not None

    def add_function(self, tool: FunctionTool) -> None:
        self._functions[tool.name] = tool

    def functions(self) -> list[dict[str, Any]]:
        """Function tools for the developer message: the app's own, then the MCP servers'."""
        own = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in self._functions.values()]
        return own + (self.mcp.functions() if self.mcp else [])

    def handles(self, recipient: str) -> bool:
        """Whether a call to `recipient` runs here (a function the client of a server defined
        does not: it is handed back to the client)."""
        recipient = recipient.strip()
        if recipient.startswith("browser."):
            return self.browser is not None
        if recipient in ("python", "functions.python") and self._kernel is not None:
            return True
        name = recipient.removeprefix("functions.")
        return recipient.startswith("functions.") and (name in self._functions or
                                                       (self.mcp is not None and self.mcp.has(name)))

    def mcp_origin(self, recipient: str) -> tuple[str, str] | None:
        """(MCP server, tool on it) a `functions.NAME` call goes to; None when it is no MCP tool."""
        name = recipient.strip().removeprefix("functions.")
        if self.mcp is None or name in self._functions or not recipient.strip().startswith("functions."):
            return None
        return self.mcp.origin(name)

    @property
    def python_folder(self) -> Path:
        return self._python_folder

    def new_kernel(self, folder: Path) -> PythonKernel:
        """A kernel (started on first use) working in `folder`, sandboxed as this toolbox's own."""
        return PythonKernel(folder, self._python_limits, self._python_timeout_s)

    def with_kernel(self, kernel: PythonKernel) -> Toolbox:
        """This toolbox whose python calls run in `kernel`: the same browser, library, web and MCP
        servers (one conversation's view of a server's tools); closing stays the original's job."""
        if self._kernel is None:
            raise ValueError("this toolbox has no python tool to give another kernel")
        view = copy.copy(self)
        view._kernel = kernel
        return view

    def new_browser_session(self) -> None:
        """Forget the pages opened so far (a server's next request is someone else's)."""
        if self.browser is not None:
            self.browser = Browser(self._library, self._web)

    def needs_approval(self, recipient: str) -> bool:
        """Whether a call runs code or may change something, so the user should consent first."""
        if recipient in ("python", "functions.python") and self._kernel is not None and "python" not in self._functions:
            return True
        if recipient.startswith("functions."):
            name = recipient.removeprefix("functions.")
            if name in self._functions:
                return not self._functions[name].read_only
            return self.mcp is not None and not self.mcp.read_only(name)
        return False

    # -- calls ---------------------------------------------------------------------------------

    def call(self, recipient: str, arguments: str, channel: str | None = None) -> dict[str, Any]:
        """The tool's reply to the call the model addressed to `recipient` (never raises)."""
        return self.run(recipient, arguments, channel).message

    def run(self, recipient: str, arguments: str, channel: str | None = None) -> ToolOutcome:
        """`call`, with its duration, whether it worked, and images the tool made."""
        started = time.perf_counter()
        images: tuple[Image, ...] = ()
        try:
            text, ok, images = self._dispatch(recipient.strip(), arguments)
        except Exception as error:  # a tool's own bug must not end the reply
            text, ok = f"[ERROR] The tool {recipient} failed: {type(error).__name__}: {error}", False
        return ToolOutcome(reply_message(recipient, text, channel), time.perf_counter() - started, ok, images)

    def _dispatch(self, recipient: str, arguments: str) -> tuple[str, bool, tuple[Image, ...]]:
        if recipient.startswith("browser."):
            return (*self._browser(recipient.removeprefix("browser."), arguments), ())
        if recipient == "python" or (recipient == "functions.python" and "python" not in self._functions
                                     and not (self.mcp and self.mcp.has("python"))):
            return self._python(arguments)
        if recipient.startswith("functions."):
            return (*self._function(recipient.removeprefix("functions."), arguments), ())
        return _error(f"Unknown tool: {recipient}"), False, ()

    def _browser(self, function: str, arguments: str) -> tuple[str, bool]:
        if self.browser is None:
            return "The browser is off for this chat (no library folder, no web).", False
        parsed = _json_object(arguments)
        if parsed is None:
            return _error("Invalid function arguments"), False
        if function not in _BROWSER_ARGUMENTS:
            return _error(f"Unknown function: {function}"), False
        if function == "search" and "top_n" in parsed:
            parsed.setdefault("topn", parsed["top_n"])
        known = {key: value for key, value in parsed.items() if key in _BROWSER_ARGUMENTS[function]}
        text = self.browser.call(function, known)
        return text, not _is_browser_error(text)

    def _python(self, code: str) -> tuple[str, bool, tuple[Image, ...]]:
        if self._kernel is None:
            return "The python tool is off for this chat.", False, ()
        try:
            result = self._kernel.run(code)
        except SandboxUnavailable as error:
            return str(error), False, ()
        except RuntimeError as error:  # the kernel did not start
            return f"[ERROR] The Python kernel could not start: {error}", False, ()
        return result.text, not (result.timed_out or result.restarted), tuple(result.images)

    def _function(self, name: str, arguments: str) -> tuple[str, bool]:
        parsed = _json_object(arguments)
        if name in self._functions:
            if parsed is None:
                return _error(f"The arguments are not a JSON object: {arguments[:200]!r}"), False
            value = self._functions[name].run(parsed)
            return (value if isinstance(value, str) else json.dumps(value)), True
        if self.mcp is not None and self.mcp.has(name):
            if parsed is None:
                return _error(f"The arguments are not a JSON object: {arguments[:200]!r}"), False
            return self.mcp.call(name, parsed)
        return _error(f"Unknown function: {name}"), False

    # -- citations and lifetime ----------------------------------------------------------------

    def citation(self, cursor: int, start: int, end: int | None = None) -> Citation | None:
        return self.browser.citation(cursor, start, end) if self.browser else None

    def close(self) -> None:
        """Stop what this toolbox started: the kernel, MCP servers, the index connection."""
        if self._kernel is not None:
            self._kernel.close()
        if self.mcp is not None:
            self.mcp.close()
        if self._web is not None:
            self._web.close()
        if self._library is not None:
            self._library.close()

    def __enter__(self) -> "Toolbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_object(text: str) -> dict[str, Any] | None:
    """The call's arguments: empty means none; otherwise they must be one JSON object."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _is_browser_error(text: str) -> bool:
    return not text.startswith("[")
