"""The tools a chat offers the model: what Settings › Tools and the chat's own switches allow
(`ToolSetup`, `ChatTools`), and the engine thread's toolboxes that run them (`ToolHost`).

A toolbox holds a chat's python kernel and browser pages, so it lives as long as the chat is in
use: it is made on the chat's first reply with tools, kept for the next ones, made again when the
settings change, and closed when it falls out of the few kept, on a model change and on quit.
Everything here that starts processes or servers runs on the engine thread, never the GUI's.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gpt_oss_desktop.mlx_model import Citation, Limits, McpConfigError, SearxngSearch, Toolbox, data_dir

log = logging.getLogger(__name__)

KEPT_TOOLBOXES = 3
"""Chats whose kernels and MCP sessions stay up; an older chat's are closed (and restarted on use)."""
CITATION = re.compile("\u3010(\\d+)\u2020L(\\d+)(?:-L(\\d+))?\u3011")
"""`【cursor†Lstart-Lend】`, the browser's citation syntax (the tool text the model was trained on)."""


@dataclass(frozen=True)
class ChatTools:
    """One chat's choices, kept with the chat: which tools it may use (each also needs its
    setting), and whether the user allowed its calls without asking each time."""

    browser: bool = True
    python: bool = True
    mcp: bool = True
    allowed: bool = False

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> ChatTools:
        known = {name: bool(value) for name, value in (stored or {}).items() if name in cls.__dataclass_fields__}
        return cls(**known)

    def stored(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ToolSetup:
    """What the engine thread builds a chat's toolbox from (Settings › Tools and the chat's
    switches combined). Equal setups share a toolbox; a changed one gets a new toolbox."""

    library: tuple[str, ...] = ()
    web: bool = False
    search_url: str = ""
    python: bool = False
    limits: Limits = field(default_factory=Limits)
    python_timeout_s: float = 120.0
    mcp_config: str | None = None
    mcp_disabled: tuple[tuple[str, tuple[str, ...] | None], ...] = ()  # server, its tools off (None: all)

    def for_chat(self, chat: ChatTools) -> ToolSetup:
        return replace(self, library=self.library if chat.browser else (), web=self.web and chat.browser,
                       python=self.python and chat.python, mcp_config=self.mcp_config if chat.mcp else None)


@dataclass(frozen=True)
class ToolRequest:
    """The tools for one reply: the chat they belong to, the setup, and the chat's stored
    browser pages (used when its toolbox is made)."""

    conversation_id: int
    setup: ToolSetup
    browser_state: dict[str, Any] | None = None


def cited_sources(texts: list[str], toolbox: Toolbox) -> list[dict[str, Any]]:
    """The citations in the answers `texts`, each resolved to the page (file and lines, or URL)
    and its title, as stored with the answer; markers the browser cannot resolve are left out."""
    found: dict[str, dict[str, Any]] = {}
    for text in texts:
        for match in CITATION.finditer(text):
            cursor, start = int(match.group(1)), int(match.group(2))
            end = int(match.group(3)) if match.group(3) else None
            citation: Citation | None = toolbox.citation(cursor, start, end)
            if citation is not None and match.group(0) not in found:
                found[match.group(0)] = {"marker": match.group(0), "url": citation.url, "title": citation.title,
                                         "path": citation.path, "file_lines": citation.file_lines,
                                         "text": citation.text}
    return list(found.values())


class ToolHost:
    """The chats' toolboxes, on the engine thread; `notes` says what could not be set up."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder  # None: the data folder, looked up when a toolbox is made
        self._boxes: OrderedDict[int, tuple[ToolSetup, Toolbox]] = OrderedDict()

    def toolbox(self, request: ToolRequest) -> tuple[Toolbox, list[str]]:
        """The chat's toolbox for this setup (made now if needed), and notes for the user."""
        kept = self._boxes.get(request.conversation_id)
        if kept is not None and kept[0] == request.setup:
            self._boxes.move_to_end(request.conversation_id)
            return kept[1], []
        self.close(request.conversation_id)
        box, notes = self._make(request)
        self._boxes[request.conversation_id] = (request.setup, box)
        while len(self._boxes) > KEPT_TOOLBOXES:
            self.close(next(iter(self._boxes)))
        return box, notes

    def _make(self, request: ToolRequest) -> tuple[Toolbox, list[str]]:
        setup, notes, home = request.setup, [], self._folder or data_dir()
        library = [folder for folder in setup.library if Path(folder).is_dir()]
        notes += [f"The library folder {folder} is missing; the browser searches the others."
                  for folder in setup.library if folder not in library]
        options: dict[str, Any] = dict(
            library=library, web=setup.web, python=setup.python, browser_state=request.browser_state,
            index_path=home / "library-index.sqlite3",
            python_folder=home / "python" / f"chat-{request.conversation_id}",
            python_limits=setup.limits, python_timeout_s=setup.python_timeout_s,
            search_provider=SearxngSearch(setup.search_url) if setup.web and setup.search_url else None,
            mcp_disabled={server: (set(tools) if tools is not None else None) for server, tools in setup.mcp_disabled},
        )
        config = setup.mcp_config if setup.mcp_config and Path(setup.mcp_config).is_file() else None
        try:
            return Toolbox(mcp_config=config, **options), notes
        except McpConfigError as error:
            notes.append(f"MCP servers are off for this reply: {error}")
            return Toolbox(**options), notes

    def browser_state(self, conversation_id: int) -> dict[str, Any] | None:
        kept = self._boxes.get(conversation_id)
        return kept[1].browser.state() if kept and kept[1].browser else None

    def close(self, conversation_id: int) -> None:
        kept = self._boxes.pop(conversation_id, None)
        if kept is not None:
            try:
                kept[1].close()
            except Exception:  # a tool that fails to stop must not stop the others
                log.exception("closing the tools of chat %s", conversation_id)

    def close_all(self) -> None:
        for conversation_id in list(self._boxes):
            self.close(conversation_id)
