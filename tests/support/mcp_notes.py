"""An MCP server for the tests: "notes" (an SDK server over stdio) offers the tool script's
record_answer, so the tool model's trained call reaches a real MCP server, which logs each call it
runs. Kept apart from tool_model.py, whose source is part of the trained model's cache key."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

_RECORD_MCP_SERVER = textwrap.dedent('''
    import json, sys
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("notes")

    @server.tool()
    def record_answer(answer: str) -> str:
        """Records the answer."""
        with open(sys.argv[1], "a") as calls:
            calls.write(json.dumps({"answer": answer}) + "\\n")
        return '{"saved": true}'

    server.run("stdio")
''')


def record_answer_mcp_config(folder: Path) -> Path:
    """An mcp.json in `folder` whose server "notes" offers record_answer (same name and schema as
    the script's, answering RECORD_RESULT) and logs each call it runs to `folder`/calls.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.py").write_text(_RECORD_MCP_SERVER)
    config = folder / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"notes": {
        "command": sys.executable, "args": [str(folder / "server.py"), str(folder / "calls.jsonl")]}}}))
    return config
