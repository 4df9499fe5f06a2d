"""Tools for gpt-oss, Qt-free: the built-in `browser` (a local library, the web when allowed) and
`python` (a sandboxed, stateful kernel), and MCP servers as function tools, behind one `Toolbox`."""

from .browser.tool import Browser, Citation
from .mcp_servers import McpConfigError, ServerStatus, load_mcp_config
from .python_kernel import Image
from .sandbox import Limits, SandboxUnavailable
from .toolbox import FunctionTool, Toolbox, ToolOutcome

__all__ = [
    "Browser",
    "Citation",
    "FunctionTool",
    "Image",
    "Limits",
    "McpConfigError",
    "SandboxUnavailable",
    "ServerStatus",
    "ToolOutcome",
    "Toolbox",
    "load_mcp_config",
]
