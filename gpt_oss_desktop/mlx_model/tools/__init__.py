"""Tools for gpt-oss, Qt-free: the built-in `browser` (a local library, the web when allowed) and
`python` (a sandboxed, stateful kernel), and MCP servers as function tools, behind one `Toolbox`.

The MCP names load the SDK on first use (it takes about half a second to import).
"""

from typing import Any

from .browser.tool import Browser, Citation
from .python_kernel import Image
from .sandbox import Limits, SandboxUnavailable, sandbox_problem
from .toolbox import FunctionTool, Toolbox, ToolOutcome, reply_message

_MCP_NAMES = ("McpConfigError", "ServerStatus", "load_mcp_config")

__all__ = ["Browser", "Citation", "FunctionTool", "Image", "Limits", "SandboxUnavailable", "ToolOutcome", "Toolbox",
           "reply_message", "sandbox_problem", *_MCP_NAMES]


def __getattr__(name: str) -> Any:
    if name in _MCP_NAMES:
        from . import mcp_servers

        return getattr(mcp_servers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
