"""Preferences in QSettings under typed keys (the pattern of Buzz's settings module).

Each key carries its type and default, so a value read back from a plist or an INI file (where
numbers come back as strings) is always of the declared type, and a damaged value falls back to
the default instead of crashing the app. Chats are not preferences: they live in the store.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from PySide6.QtCore import QByteArray, QCoreApplication, QSettings

from gpt_oss_desktop.mlx_model import (
    APPLICATION_NAME,
    GIB,
    REASONING_LEVELS,
    Limits,
    LoadOptions,
    SamplingSettings,
    data_dir,
)

from .chat_caches import DEFAULT_BUDGET_GIB
from .chat_tools import ToolSetup

APPLICATION_DISPLAY_NAME = "gpt-oss"
# macOS keeps the preferences in ~/Library/Preferences/local.gpt-oss.gpt-oss-desktop.plist. No
# organization *name* is set, so Qt's AppDataLocation is Application Support/gpt-oss-desktop (not
# Application Support/<organization>/gpt-oss-desktop): the folder mlx_model.data_dir() gives.
ORGANIZATION_DOMAIN = "gpt-oss.local"

MEMORY_MODES = ("automatic", "manual")
EMBEDDING_PLACES = ("mapped", "resident")
DENSE_BIT_WIDTHS = (16, 8, 4)
KV_BIT_WIDTHS = (16, 8)
APPROVAL_POLICIES = ("ask", "always")
MCP_CONFIG_NAME = "mcp.json"
"""The app's own MCP servers file in the data folder (the usual `mcpServers` shape): Settings ›
Tools edits it, and servers from another app's file can be imported into it."""


class Key(Enum):
    MODEL = ("model/path_or_hub_id", str, "")
    CONTEXT_LENGTH = ("model/context_length", int, 0)  # 0: the engine picks what fits this Mac
    TEMPERATURE = ("sampling/temperature", float, 1.0)
    TOP_P = ("sampling/top_p", float, 1.0)
    MAX_NEW_TOKENS = ("sampling/max_new_tokens", int, 4096)
    # How the weights and the KV cache are held (mlx_model.LoadOptions). Automatic: the least
    # lossy options that fit this Mac, chosen at each load (an 8-bit KV cache only where it is the
    # difference between fitting and not); the other four apply in manual mode only.
    MEMORY_MODE = ("memory/mode", str, "automatic")
    EMBEDDING = ("memory/embedding", str, "mapped")
    DENSE_BITS = ("memory/dense_bits", int, 16)
    EXPERT_BUDGET_GIB = ("memory/expert_budget_gib", float, 0.0)  # 0: every expert resident
    KV_BITS = ("memory/kv_bits", int, 16)
    # Disk the chats' saved prompt caches may take (chat_caches.py), least recently used out
    CHAT_CACHE_GIB = ("memory/chat_cache_gib", float, DEFAULT_BUDGET_GIB)
    DEVELOPER_INSTRUCTIONS = ("chat/developer_instructions", str, "")
    DEFAULT_REASONING_LEVEL = ("chat/default_reasoning", str, "medium")
    LAST_CONVERSATION = ("chat/last_conversation", int, 0)
    # Settings › Tools. The browser reads the library folders (a JSON list) offline; the web and
    # python are off until turned on. Python runs sandboxed; "ask" asks before each call that runs
    # code or may change something (python, MCP tools not marked read-only), "always" does not ask.
    LIBRARY_FOLDERS = ("tools/library_folders", str, "[]")
    WEB = ("tools/web", bool, False)
    WEB_SEARCH_URL = ("tools/web_search_url", str, "")  # a SearXNG instance; none: the web opens pages only
    PYTHON = ("tools/python", bool, False)  # off until turned on: it adds the tool to every chat's prompt
    APPROVAL = ("tools/approval", str, "ask")
    PYTHON_MEMORY_MIB = ("tools/python_memory_mib", int, 4096)
    PYTHON_CPU_SECONDS = ("tools/python_cpu_seconds", int, 600)
    PYTHON_TIMEOUT_SECONDS = ("tools/python_timeout_seconds", int, 120)
    MCP_DISABLED = ("tools/mcp_disabled", str, "{}")  # JSON: server → null (all off) or its tools off
    # Settings › Local server: the OpenAI-compatible server on the loaded model (off by default)
    SERVER_ENABLED = ("server/enabled", bool, False)
    SERVER_HOST = ("server/host", str, "127.0.0.1")  # anything but loopback needs the key
    SERVER_PORT = ("server/port", int, 8000)
    SERVER_API_KEY = ("server/api_key", str, "")
    WINDOW_GEOMETRY = ("window/geometry", bytes, b"")
    WINDOW_STATE = ("window/state", bytes, b"")

    def __init__(self, path: str, kind: type, default: Any) -> None:
        self.path = path
        self.kind = kind
        self.default = default


def configure_application(app: QCoreApplication) -> None:
    """The identity QSettings derives its location from; call first."""
    app.setApplicationName(APPLICATION_NAME)
    app.setOrganizationDomain(ORGANIZATION_DOMAIN)
    if hasattr(app, "setApplicationDisplayName"):
        app.setApplicationDisplayName(APPLICATION_DISPLAY_NAME)


def manual_load_options(embedding: str, dense_bits: int, expert_budget_gib: float, kv_bits: int) -> LoadOptions:
    """LoadOptions from the manual memory settings; a budget of 0 (or a damaged one) keeps every
    expert resident."""
    budget = int(expert_budget_gib * GIB) if 0 < expert_budget_gib < float("inf") else None
    return LoadOptions(embedding=embedding, dense_bits=dense_bits, expert_budget_bytes=budget, kv_bits=kv_bits)


class Settings:
    def __init__(self, store: QSettings | None = None) -> None:
        self._store = store if store is not None else QSettings()

    def value(self, key: Key) -> Any:
        raw = self._store.value(key.path, None)
        if raw is None:
            return key.default
        try:
            if key.kind is bytes:
                return bytes(raw.data() if isinstance(raw, QByteArray) else raw)
            if key.kind is bool and not isinstance(raw, bool):  # INI files give "true"/"false"
                return {"true": True, "1": True, "false": False, "0": False}.get(str(raw).lower(), key.default)
            return key.kind(raw)
        except (TypeError, ValueError):
            return key.default

    def set_value(self, key: Key, value: Any) -> None:
        if key.kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, key.kind):
            raise TypeError(f"{key.name} takes {key.kind.__name__}, not {type(value).__name__}")
        self._store.setValue(key.path, QByteArray(value) if key.kind is bytes else value)

    def reset(self, key: Key) -> None:
        self._store.remove(key.path)

    def sync(self) -> None:
        self._store.sync()

    def default_reasoning_level(self) -> str:
        reasoning_level = self.value(Key.DEFAULT_REASONING_LEVEL)
        return reasoning_level if reasoning_level in REASONING_LEVELS else Key.DEFAULT_REASONING_LEVEL.default

    def sampling(self) -> SamplingSettings:
        return SamplingSettings(
            temperature=self.value(Key.TEMPERATURE),
            top_p=self.value(Key.TOP_P),
            max_new_tokens=self.value(Key.MAX_NEW_TOKENS),
        )

    def context_length(self) -> int | None:
        """The context to load the model with; None lets the engine choose."""
        return self.value(Key.CONTEXT_LENGTH) or None

    def load_options(self) -> LoadOptions | None:
        """The manual memory options, or None in automatic mode (the session then asks
        mlx_model.plan_load at load time). Damaged values fall back to the defaults."""
        if self.value(Key.MEMORY_MODE) != "manual":
            return None
        embedding, bits, kv_bits = self.value(Key.EMBEDDING), self.value(Key.DENSE_BITS), self.value(Key.KV_BITS)
        return manual_load_options(
            embedding if embedding in EMBEDDING_PLACES else Key.EMBEDDING.default,
            bits if bits in DENSE_BIT_WIDTHS else Key.DENSE_BITS.default,
            self.value(Key.EXPERT_BUDGET_GIB),
            kv_bits if kv_bits in KV_BIT_WIDTHS else Key.KV_BITS.default,
        )

    def chat_cache_budget_bytes(self) -> int:
        """The disk the chats' saved prompt caches may take; a damaged or negative value gives the
        default, 0 keeps none."""
        gib = self.value(Key.CHAT_CACHE_GIB)
        return int((gib if 0 <= gib < float("inf") else Key.CHAT_CACHE_GIB.default) * GIB)

    # -- tools ---------------------------------------------------------------------------------

    def library_folders(self) -> list[str]:
        return _json_value(self.value(Key.LIBRARY_FOLDERS), list, lambda v: all(isinstance(f, str) for f in v))

    def set_library_folders(self, folders: list[str]) -> None:
        self.set_value(Key.LIBRARY_FOLDERS, json.dumps(list(dict.fromkeys(folders))))

    def mcp_disabled(self) -> dict[str, list[str] | None]:
        """Server name → its tools turned off, or None when the whole server is off."""
        return _json_value(self.value(Key.MCP_DISABLED), dict,
                           lambda v: all(t is None or (isinstance(t, list) and all(isinstance(n, str) for n in t))
                                         for t in v.values()))

    def set_mcp_disabled(self, disabled: dict[str, list[str] | None]) -> None:
        self.set_value(Key.MCP_DISABLED, json.dumps({name: tools for name, tools in disabled.items()
                                                     if tools is None or tools}, sort_keys=True))

    def approval(self) -> str:
        policy = self.value(Key.APPROVAL)
        return policy if policy in APPROVAL_POLICIES else Key.APPROVAL.default

    def tool_setup(self) -> ToolSetup:
        """The tools Settings › Tools allows (a chat may switch some off for itself)."""
        limits = Limits(memory_bytes=max(64, self.value(Key.PYTHON_MEMORY_MIB)) * 2**20,
                        cpu_seconds=max(1, self.value(Key.PYTHON_CPU_SECONDS)))
        disabled = tuple(sorted((server, None if tools is None else tuple(sorted(tools)))
                                for server, tools in self.mcp_disabled().items()))
        return ToolSetup(library=tuple(self.library_folders()), web=self.value(Key.WEB),
                         search_url=self.value(Key.WEB_SEARCH_URL).strip(), python=self.value(Key.PYTHON),
                         limits=limits, python_timeout_s=float(max(1, self.value(Key.PYTHON_TIMEOUT_SECONDS))),
                         mcp_config=str(data_dir() / MCP_CONFIG_NAME), mcp_disabled=disabled)


def _json_value(text: str, kind: type, valid: Any) -> Any:
    """A JSON setting, or an empty `kind` when it is damaged."""
    try:
        value = json.loads(text)
    except ValueError:
        return kind()
    return value if isinstance(value, kind) and valid(value) else kind()
