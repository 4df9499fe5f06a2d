"""The chat database's schema, as numbered migrations recorded in SQLite's `user_version`.

A migration is a list of statements run in one transaction together with the version bump, so
a failure leaves the database exactly as it was. Never edit a released migration: add one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

Migration = Sequence[str]

MIGRATIONS: tuple[Migration, ...] = (
    (
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            reasoning_level TEXT NOT NULL DEFAULT 'medium'
                CHECK (reasoning_level IN ('low', 'medium', 'high')),
            start_date TEXT NOT NULL,
            developer_instructions TEXT,
            model TEXT
        )
        """,
        # One row per harmony message, except analysis: the reasoning that led to an assistant
        # message is kept in that message's `reasoning` column, so a reply reads as one row
        # and the analysis can still be given back to the model around tool calls.
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
            author_name TEXT,
            channel TEXT,
            recipient TEXT,
            content_type TEXT,
            content TEXT NOT NULL DEFAULT '',
            reasoning TEXT NOT NULL DEFAULT '',
            reasoning_level TEXT,
            started_at REAL NOT NULL,
            thought_seconds REAL,
            stats_json TEXT,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('streaming', 'complete', 'cancelled', 'interrupted', 'failed')),
            detail TEXT,
            UNIQUE (conversation_id, position)
        )
        """,
        "CREATE INDEX conversations_by_recency ON conversations (updated_at DESC)",
        "CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming'",
    ),
    (
        # The tools a chat offers the model and the calls the user allowed for it (JSON), and the
        # browser's page stack, so the cursors a chat's citations name survive a restart.
        "ALTER TABLE conversations ADD COLUMN tools_json TEXT",
        "ALTER TABLE conversations ADD COLUMN browser_state_json TEXT",
        # What a message carries besides its text: a tool result's images, an answer's citations.
        "ALTER TABLE messages ADD COLUMN attachments_json TEXT",
    ),
    (
        # Earlier versions of a chat's tail, kept when a reply is regenerated or a message edited:
        # a version is the messages after one shown message (`after_id`, NULL: the chat's start),
        # numbered in the order they were made. Its messages point at it and are not shown; a
        # version inside another (a regenerate after an edit) hangs from it (`parent_id`) and
        # comes back with it. Messages of the shown chat have version_id NULL, as before.
        """
        CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            after_id INTEGER,
            ordinal INTEGER NOT NULL,
            parent_id INTEGER REFERENCES versions (id) ON DELETE CASCADE
        )
        """,
        "ALTER TABLE messages ADD COLUMN version_id INTEGER REFERENCES versions (id) ON DELETE CASCADE",
        "CREATE INDEX messages_shown ON messages (conversation_id, position) WHERE version_id IS NULL",
    ),
)


class SchemaTooNewError(Exception):
    """The database was written by a newer version of the app."""


def schema_version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA user_version").fetchone()[0]


def migrate(connection: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the schema up to `len(migrations)`; returns how many migrations ran.

    `connection` must be in autocommit mode (isolation_level=None) so each migration is exactly
    one explicit transaction.
    """
    current = schema_version(connection)
    if current > len(migrations):
        raise SchemaTooNewError(
            f"the chat database has schema version {current}, newer than this app's {len(migrations)}: "
            "it was written by a newer version of gpt-oss desktop"
        )
    for number, statements in enumerate(migrations[current:], start=current + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return len(migrations) - current
