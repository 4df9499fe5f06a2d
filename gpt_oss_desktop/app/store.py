"""The chats on disk: SQLite in WAL mode, one transaction per change, search across all chats.

Qt-free, used only from the GUI thread (every write is one small statement). WAL with
synchronous=NORMAL means a committed write survives the app being killed; a reply is written
as it streams (see recorder.py), so a crash loses at most the last fraction of a second, and on
the next start a reply that was still streaming is marked interrupted (Buzz's recovery pattern).
SQLite errors become `StoreError`s whose messages say what happened and what to do.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .migrations import SchemaTooNewError, migrate

DEFAULT_TITLE = "New Chat"
MESSAGE_STATUSES = ("streaming", "complete", "cancelled", "interrupted", "failed")

_SEARCH_TRIGGERS = {
    "message_search_insert": """
        CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
            INSERT INTO message_search (rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
        END""",
    "message_search_delete": """
        CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
            INSERT INTO message_search (message_search, rowid, content, reasoning)
            VALUES ('delete', old.id, old.content, old.reasoning);
        END""",
    "message_search_update": """
        CREATE TRIGGER message_search_update AFTER UPDATE OF content, reasoning ON messages BEGIN
            INSERT INTO message_search (message_search, rowid, content, reasoning)
            VALUES ('delete', old.id, old.content, old.reasoning);
            INSERT INTO message_search (rowid, content, reasoning) VALUES (new.id, new.content, new.reasoning);
        END""",
}
_MESSAGE_COLUMNS = (
    "id, conversation_id, position, role, author_name, channel, recipient, content_type, content, "
    "reasoning, reasoning_level, started_at, thought_seconds, stats_json, status, detail, attachments_json"
)
_CONVERSATION_COLUMNS = (
    "id, title, created_at, updated_at, reasoning_level, start_date, developer_instructions, model, tools_json"
)
_UPDATABLE = frozenset(
    {"channel", "recipient", "content_type", "content", "reasoning", "thought_seconds", "stats", "status", "detail",
     "attachments"}
)


class StoreError(Exception):
    """A chat could not be read or saved; the message names the file and what to do.

    `damaged` is set when the file is not a usable database, so the app can offer to move it
    aside (never delete it) and start a new one.
    """

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    title: str
    created_at: float
    updated_at: float
    reasoning_level: str
    start_date: str
    developer_instructions: str | None
    model: str | None
    tools: dict[str, Any] | None = None  # the chat's tools and consents (session.ChatTools), None: defaults


@dataclass(frozen=True)
class MessageRecord:
    id: int
    conversation_id: int
    position: int
    role: str
    author_name: str | None
    channel: str | None
    recipient: str | None
    content_type: str | None
    content: str
    reasoning: str
    reasoning_level: str | None
    started_at: float
    thought_seconds: float | None
    stats: dict[str, Any] | None
    status: str
    detail: str | None
    attachments: dict[str, Any] | None = None  # {"images": [[mime, base64], ...]}, {"citations": [...]}


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    title: str
    snippet: str


class Store:
    def __init__(self, path: str | Path, *, full_text_search: bool = True) -> None:
        """Open (creating if needed) and migrate the database at `path`.

        `full_text_search=False` forces the LIKE search used where SQLite lacks FTS5.
        """
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(_explain(error, self.path), damaged=_is_damage(error)) from error
        try:
            self.journal_mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 3000")
            migrate(self._db)
            self.full_text_search = full_text_search and _fts5_available(self._db)
            self._sync_search_index()
        except SchemaTooNewError as error:
            self._db.close()
            raise StoreError(f"Cannot open {self.path}: {error}. Update the app to open these chats.") from error
        except sqlite3.Error as error:
            self._db.close()
            raise StoreError(_explain(error, self.path), damaged=_is_damage(error)) from error

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(_explain(error, self.path), damaged=_is_damage(error)) from error

    def _read(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise StoreError(_explain(error, self.path), damaged=_is_damage(error)) from error

    # -- conversations -------------------------------------------------------------------------

    def create_conversation(
        self,
        *,
        reasoning_level: str = "medium",
        developer_instructions: str | None = None,
        model: str | None = None,
        title: str = DEFAULT_TITLE,
        start_date: str | None = None,
    ) -> ConversationRecord:
        """A new chat; its start date is fixed now so its system prompt never changes."""
        now = time.time()
        start_date = start_date or dt.date.today().isoformat()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, reasoning_level, start_date, "
                "developer_instructions, model) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, now, now, reasoning_level, start_date, developer_instructions or None, model),
            )
        return self.conversation(cursor.lastrowid)

    def conversation(self, conversation_id: int) -> ConversationRecord:
        rows = self._read(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise KeyError(f"no conversation {conversation_id}")
        return _conversation(rows[0])

    def conversations(self) -> list[ConversationRecord]:
        """All chats, the most recently active first."""
        return [
            _conversation(row)
            for row in self._read(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations ORDER BY updated_at DESC, id DESC")
        ]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split()) or DEFAULT_TITLE
        with self._transaction() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def set_reasoning_level(self, conversation_id: int, reasoning_level: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE conversations SET reasoning_level = ? WHERE id = ?", (reasoning_level, conversation_id))

    def set_model(self, conversation_id: int, model: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE conversations SET model = ? WHERE id = ?", (model, conversation_id))

    def set_tools(self, conversation_id: int, tools: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute("UPDATE conversations SET tools_json = ? WHERE id = ?", (json.dumps(tools), conversation_id))

    def browser_state(self, conversation_id: int) -> dict[str, Any] | None:
        """The chat's browser pages (mlx_model's Browser.state()), or None before its first page."""
        rows = self._read("SELECT browser_state_json FROM conversations WHERE id = ?", (conversation_id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def set_browser_state(self, conversation_id: int, state: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute("UPDATE conversations SET browser_state_json = ? WHERE id = ?",
                       (json.dumps(state), conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- messages ------------------------------------------------------------------------------

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        return [
            _message(row)
            for row in self._read(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND version_id IS NULL "
                "ORDER BY position",
                (conversation_id,),
            )
        ]

    def message(self, message_id: int) -> MessageRecord:
        rows = self._read(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise KeyError(f"no message {message_id}")
        return _message(rows[0])

    def add_message(
        self,
        conversation_id: int,
        *,
        role: str,
        content: str = "",
        channel: str | None = None,
        recipient: str | None = None,
        content_type: str | None = None,
        author_name: str | None = None,
        reasoning: str = "",
        reasoning_level: str | None = None,
        status: str = "complete",
        thought_seconds: float | None = None,
        stats: dict[str, Any] | None = None,
        detail: str | None = None,
        attachments: dict[str, Any] | None = None,
    ) -> MessageRecord:
        """Append a message at the end of the chat (and mark the chat as active now)."""
        now = time.time()
        with self._transaction() as db:
            (position,) = db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO messages (conversation_id, position, role, author_name, channel, recipient, "
                "content_type, content, reasoning, reasoning_level, started_at, thought_seconds, stats_json, "
                "status, detail, attachments_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id, position, role, author_name, channel, recipient, content_type, content,
                    reasoning, reasoning_level, now, thought_seconds, _json_or_none(stats), status, detail,
                    _json_or_none(attachments),
                ),
            )
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        return self.message(cursor.lastrowid)

    def update_message(self, message_id: int, **fields: Any) -> None:
        """Change some of a message's columns (content, reasoning, status, stats, ...) at once."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        for name in ("stats", "attachments"):
            if name in fields:
                fields[f"{name}_json"] = _json_or_none(fields.pop(name))
        assignments = ", ".join(f"{column} = ?" for column in fields)
        with self._transaction() as db:
            db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*fields.values(), message_id))

    def delete_message(self, message_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def keep_version(self, conversation_id: int, position: int) -> None:
        """Put the shown messages at `position` and after aside as a version of this point of the
        chat (to regenerate a reply or edit a message without losing what was there); what is
        added next is the newest version, shown."""
        with self._transaction() as db:
            after_id = self._shown_before(db, conversation_id, position)
            self._put_aside(db, conversation_id, after_id, position, self._shown_ordinal(db, conversation_id, after_id))

    def versions(self, conversation_id: int) -> dict[int | None, tuple[int, int]]:
        """For every point of the shown chat with kept versions (the id of the shown message the
        versions follow, None for the chat's start): (the shown version's number from 1, how many)."""
        counts: dict[int | None, tuple[int, int]] = {}
        rows = self._read(
            "SELECT after_id, COUNT(*) FROM versions WHERE conversation_id = ? AND parent_id IS NULL "
            "AND (after_id IS NULL OR after_id IN (SELECT id FROM messages WHERE version_id IS NULL)) "
            "GROUP BY after_id",
            (conversation_id,),
        )
        for after_id, hidden in rows:
            counts[after_id] = (self._shown_ordinal(self._db, conversation_id, after_id), hidden + 1)
        return counts

    def show_version(self, conversation_id: int, after_id: int | None, ordinal: int) -> None:
        """Show version `ordinal` of what follows message `after_id`; the shown one is kept aside."""
        with self._transaction() as db:
            target = db.execute(
                "SELECT id FROM versions WHERE conversation_id = ? AND after_id IS ? AND parent_id IS NULL AND ordinal = ?",
                (conversation_id, after_id, ordinal),
            ).fetchone()
            if target is None:
                return  # the shown one, or no such version
            position = db.execute(
                "SELECT COALESCE(MIN(position), -1) FROM messages WHERE conversation_id = ? AND version_id IS NULL "
                "AND position > COALESCE((SELECT position FROM messages WHERE id = ?), -1)",
                (conversation_id, after_id),
            ).fetchone()[0]
            if position >= 0:
                self._put_aside(db, conversation_id, after_id, position, self._shown_ordinal(db, conversation_id, after_id))
            db.execute("UPDATE messages SET version_id = NULL WHERE version_id = ?", target)
            db.execute("UPDATE versions SET parent_id = NULL WHERE parent_id = ?", target)
            db.execute("DELETE FROM versions WHERE id = ?", target)

    @staticmethod
    def _shown_before(db: sqlite3.Connection, conversation_id: int, position: int) -> int | None:
        row = db.execute(
            "SELECT id FROM messages WHERE conversation_id = ? AND version_id IS NULL AND position < ? "
            "ORDER BY position DESC LIMIT 1",
            (conversation_id, position),
        ).fetchone()
        return row[0] if row else None

    @staticmethod
    def _shown_ordinal(db: sqlite3.Connection, conversation_id: int, after_id: int | None) -> int:
        """The shown version's number: the one the kept versions at this point do not have."""
        taken = {ordinal for (ordinal,) in db.execute(
            "SELECT ordinal FROM versions WHERE conversation_id = ? AND after_id IS ? AND parent_id IS NULL",
            (conversation_id, after_id),
        )}
        return next(number for number in range(1, len(taken) + 2) if number not in taken)

    @staticmethod
    def _put_aside(db: sqlite3.Connection, conversation_id: int, after_id: int | None, position: int,
                   ordinal: int) -> None:
        """The shown messages from `position` on become version `ordinal`, with the points inside
        them that have versions of their own."""
        kept = db.execute(
            "INSERT INTO versions (conversation_id, after_id, ordinal) VALUES (?, ?, ?)",
            (conversation_id, after_id, ordinal),
        ).lastrowid
        inside = "SELECT id FROM messages WHERE conversation_id = ? AND version_id IS NULL AND position >= ?"
        db.execute(
            f"UPDATE versions SET parent_id = ? WHERE conversation_id = ? AND parent_id IS NULL AND after_id IN ({inside})",
            (kept, conversation_id, conversation_id, position),
        )
        db.execute(
            "UPDATE messages SET version_id = ? WHERE conversation_id = ? AND version_id IS NULL AND position >= ?",
            (kept, conversation_id, position),
        )

    def mark_interrupted_replies(self, cause: str | None = None) -> int:
        """Replies still streaming when the app last stopped: mark them interrupted (their text
        up to the last write is kept), with `cause` (how the last run ended, see run_record.py)
        as the reason. Returns how many there were."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE messages SET status = 'interrupted', detail = ? WHERE status = 'streaming'",
                (cause or "The app stopped before this reply finished.",),
            )
        return cursor.rowcount

    # -- search --------------------------------------------------------------------------------

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        """Chats whose title or messages match every word of `query`, most recent first, with
        a snippet around the first match."""
        words = re.findall(r"\w+", query.lower())
        if not words:
            return []
        if self.full_text_search:
            matches = self._read(
                "SELECT m.conversation_id, snippet(message_search, -1, '', '', '…', 10) "
                "FROM message_search JOIN messages m ON m.id = message_search.rowid "
                "WHERE message_search MATCH ? AND m.version_id IS NULL ORDER BY m.started_at DESC",
                (" ".join(f'"{word}"*' for word in words),),
            )
        else:
            clauses = " AND ".join(["(lower(content) LIKE ? ESCAPE '\\' OR lower(reasoning) LIKE ? ESCAPE '\\')"] * len(words))
            parameters = tuple(pattern for word in words for pattern in (_like(word),) * 2)
            matches = [
                (conversation_id, _snippet(content or reasoning, words[0]))
                for conversation_id, content, reasoning in self._read(
                    f"SELECT conversation_id, content, reasoning FROM messages WHERE version_id IS NULL AND {clauses} "
                    "ORDER BY started_at DESC",
                    parameters,
                )
            ]
        snippets: dict[int, str] = {}
        for conversation_id, snippet in matches:
            snippets.setdefault(conversation_id, " ".join(snippet.split()))
        hits = []
        for record in self.conversations():
            title_matches = all(word in record.title.lower() for word in words)
            if record.id in snippets or title_matches:
                hits.append(SearchHit(record.id, record.title, snippets.get(record.id, "")))
        return hits[:limit]

    def _sync_search_index(self) -> None:
        """Create the FTS5 index where SQLite has FTS5, filling it from the messages; where it
        has not (a database moved to another machine), drop the triggers that would fail."""
        existing = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        if not self.full_text_search:
            with self._transaction() as db:
                for name in _SEARCH_TRIGGERS.keys() & existing:
                    db.execute(f"DROP TRIGGER {name}")
            return
        if _SEARCH_TRIGGERS.keys() <= existing:
            return
        with self._transaction() as db:
            db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5("
                "content, reasoning, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
            )
            for name, sql in _SEARCH_TRIGGERS.items():
                if name not in existing:
                    db.execute(sql)
            db.execute("INSERT INTO message_search (message_search) VALUES ('rebuild')")

    @staticmethod
    def move_aside(path: str | Path) -> Path:
        """Rename a damaged database (with its WAL files) out of the way; returns the new name."""
        path = Path(path)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = path.with_name(f"{path.stem}-damaged-{stamp}{path.suffix}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(path) + suffix)
            if source.exists():
                source.rename(str(kept) + suffix)
        return kept


def _message(row: tuple) -> MessageRecord:
    values = list(row)
    for index in (13, 16):  # stats_json, attachments_json
        values[index] = json.loads(values[index]) if values[index] else None
    return MessageRecord(*values)


def _conversation(row: tuple) -> ConversationRecord:
    return ConversationRecord(*row[:-1], tools=json.loads(row[-1]) if row[-1] else None)


def _json_or_none(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _snippet(text: str, word: str, width: int = 60) -> str:
    at = text.lower().find(word)
    start = max(0, at - width // 2)
    return ("…" if start else "") + text[start : start + width] + ("…" if start + width < len(text) else "")


def _fts5_available(db: sqlite3.Connection) -> bool:
    try:
        db.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        db.execute("DROP TABLE temp.fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


def _is_damage(error: BaseException) -> bool:
    return isinstance(error, sqlite3.DatabaseError) and any(
        phrase in str(error) for phrase in ("not a database", "malformed", "corrupt")
    )


def _explain(error: BaseException, path: Path) -> str:
    text = str(error)
    if "full" in text or getattr(error, "errno", None) == 28:
        return f"The disk is full, so the chats could not be saved to {path}. Free some space and try again."
    if "readonly" in text or "read-only" in text or isinstance(error, PermissionError):
        return f"The chat database {path} cannot be written (it or its folder is read-only). Check its permissions."
    if "locked" in text or "busy" in text:
        return f"The chat database {path} is busy in another program. Close it and try again."
    if _is_damage(error):
        return f"The chat database {path} is damaged ({text})."
    if "unable to open" in text or isinstance(error, OSError):
        return f"The chat database {path} cannot be opened ({text}). Check that its folder exists and is writable."
    return f"The chat database {path} failed: {text}."
