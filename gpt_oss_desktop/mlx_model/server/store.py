"""Stored responses (`store: true`) in SQLite, so `previous_response_id` chains survive a restart;
and the chain of thought behind each function call the server reported, so a client that does
not send reasoning back (most Chat Completions clients) still gets it rendered in the turn in
progress, as gpt-oss needs; and the calls the server's own tools answered, which neither API
carries back in full."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ApiError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    start_date TEXT NOT NULL,
    input_items TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS call_reasoning (
    call_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    reasoning TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tool_rounds (
    key TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    messages TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]  # the whole chain's input before this response's output
    start_date: str  # the conversation's date, kept so its system message (and cache) stays stable


class ResponseStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise OSError(f"cannot open the response store {path}: {error}") from error
        self._lock = threading.Lock()

    def _write(self, sql: str, values: tuple) -> None:
        try:
            with self._lock:
                self._db.execute(sql, values)
        except sqlite3.Error as error:
            raise ApiError(500, f"could not write the response store {self.path}: {error}",
                           kind="server_error", code="storage_failed") from error

    def save(self, stored: StoredResponse) -> None:
        response = stored.response
        self._write(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
            (response["id"], response["created_at"], stored.start_date, json.dumps(stored.input_items),
             json.dumps(response)),
        )

    def load(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response, input_items, start_date FROM responses WHERE id = ?", (response_id,)
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(json.loads(row[0]), json.loads(row[1]), row[2])

    def remember_reasoning(self, call_ids: list[str], reasoning: str) -> None:
        for call_id in call_ids:
            self._write("INSERT OR REPLACE INTO call_reasoning VALUES (?, ?, ?)",
                        (call_id, int(time.time()), reasoning))

    def reasoning_for(self, call_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT reasoning FROM call_reasoning WHERE call_id = ?", (call_id,)).fetchone()
        return None if row is None else row[0]

    def remember_tool_rounds(self, key: str, messages: list[dict[str, Any]]) -> None:
        """The harmony messages of tool calls the server ran (call and result), under the id of
        the item that reports them or of the client's call that followed, so a turn still in
        progress is rendered again as the model wrote and read it."""
        self._write("INSERT OR REPLACE INTO tool_rounds VALUES (?, ?, ?)", (key, int(time.time()), json.dumps(messages)))

    def tool_rounds(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            row = self._db.execute("SELECT messages FROM tool_rounds WHERE key = ?", (key,)).fetchone()
        return [] if row is None else json.loads(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
