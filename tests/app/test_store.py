"""The chat store: WAL, migrations, search with and without FTS5, crash recovery, clear errors."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gpt_oss_desktop.app import migrations
from gpt_oss_desktop.app.store import DEFAULT_TITLE, Store, StoreError, _explain

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "chats.sqlite3")
    yield opened
    opened.close()


def test_the_database_is_in_wal_mode_for_every_connection(store):
    assert store.journal_mode == "wal"
    other = sqlite3.connect(store.path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_conversations_keep_their_level_date_instructions_and_model(store):
    chat = store.create_conversation(reasoning_level="high", developer_instructions="Be terse.", model="gpt-oss-20b")
    assert chat.title == DEFAULT_TITLE and chat.start_date == time.strftime("%Y-%m-%d")
    store.set_reasoning_level(chat.id, "low")
    store.rename_conversation(chat.id, "  Rust   lifetimes ")
    again = store.conversation(chat.id)
    assert (again.title, again.reasoning_level, again.developer_instructions, again.model) == (
        "Rust lifetimes", "low", "Be terse.", "gpt-oss-20b",
    )


def test_the_most_recently_active_chat_comes_first_and_delete_removes_its_messages(store):
    older = store.create_conversation()
    newer = store.create_conversation()
    store.add_message(older.id, role="user", content="bump")
    assert [c.id for c in store.conversations()] == [older.id, newer.id]

    store.delete_conversation(older.id)
    assert [c.id for c in store.conversations()] == [newer.id]
    assert store.messages(older.id) == []


def test_messages_keep_order_reasoning_level_timings_and_stats(store):
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Why is the sky blue?")
    reply = store.add_message(
        chat.id, role="assistant", channel="final", content="Rayleigh scattering.", reasoning="Short answer.",
        reasoning_level="high", thought_seconds=1.5, stats={"tokens_per_s": 41.0},
    )
    first, second = store.messages(chat.id)
    assert (first.position, second.position) == (0, 1)
    assert second == reply
    assert (reply.reasoning, reply.reasoning_level, reply.thought_seconds, reply.stats) == (
        "Short answer.", "high", 1.5, {"tokens_per_s": 41.0},
    )
    assert reply.started_at == pytest.approx(time.time(), abs=5)


@pytest.mark.parametrize("full_text_search", [True, False], ids=["fts5", "like"])
def test_search_finds_words_across_all_chats_in_titles_messages_and_reasoning(tmp_path, full_text_search):
    store = Store(tmp_path / "chats.sqlite3", full_text_search=full_text_search)
    assert store.full_text_search is full_text_search
    physics = store.create_conversation(title="Physics questions")
    store.add_message(physics.id, role="user", content="Explain quantum entanglement simply.")
    cooking = store.create_conversation(title="Dinner")
    store.add_message(cooking.id, role="assistant", content="Simmer the sauce.", reasoning="Quantum of salt: a pinch.")
    store.create_conversation(title="Quantum computing")

    found = {hit.title: hit for hit in store.search("quantum")}
    assert set(found) == {"Physics questions", "Dinner", "Quantum computing"}
    assert "entanglement" in found["Physics questions"].snippet
    assert {hit.title for hit in store.search("quant")} == set(found), "prefixes match"
    assert [hit.title for hit in store.search("QUANTUM entanglement")] == ["Physics questions"]
    assert store.search("photosynthesis") == []
    assert store.search("  %_ ") == []
    store.close()


def test_the_search_index_is_rebuilt_for_messages_written_while_it_was_off(tmp_path):
    path = tmp_path / "chats.sqlite3"
    with_fts = Store(path)
    chat = with_fts.create_conversation()
    with_fts.add_message(chat.id, role="user", content="first zebra")
    with_fts.close()
    without_fts = Store(path, full_text_search=False)  # as on an SQLite without FTS5
    without_fts.add_message(chat.id, role="user", content="second giraffe")
    without_fts.close()

    reopened = Store(path)
    assert [hit.conversation_id for hit in reopened.search("giraffe")] == [chat.id]
    assert [hit.conversation_id for hit in reopened.search("zebra")] == [chat.id]
    reopened.close()


def test_a_new_database_gets_the_whole_schema(store):
    version = sqlite3.connect(store.path).execute("PRAGMA user_version").fetchone()[0]
    assert version == len(migrations.MIGRATIONS)


def test_migrations_run_once_each_in_order_and_keep_the_data(tmp_path):
    db = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    first = ("CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('kept')")
    second = ("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",)

    assert migrations.migrate(db, [first]) == 1
    assert migrations.migrate(db, [first, second]) == 1
    assert migrations.migrate(db, [first, second]) == 0
    assert db.execute("SELECT text, pinned FROM notes").fetchall() == [("kept", 0)]
    assert migrations.schema_version(db) == 2


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path):
    db = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    migrations.migrate(db, [("CREATE TABLE notes (text TEXT)",)])
    broken = ("CREATE TABLE tags (name TEXT)", "THIS IS NOT SQL")
    with pytest.raises(sqlite3.OperationalError):
        migrations.migrate(db, [("CREATE TABLE notes (text TEXT)",), broken])
    assert migrations.schema_version(db) == 1
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'tags'").fetchall() == []


def test_a_database_from_a_newer_app_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "chats.sqlite3"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer version"):
        Store(path)


def test_a_damaged_database_is_reported_and_can_be_moved_aside_without_losing_it(tmp_path):
    path = tmp_path / "chats.sqlite3"
    garbage = b"this is not an SQLite database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="damaged") as raised:
        Store(path)
    assert raised.value.damaged

    kept = Store.move_aside(path)
    assert kept.read_bytes() == garbage and not path.exists()
    fresh = Store(path)
    assert fresh.conversations() == []
    fresh.close()


def test_a_full_disk_is_a_clear_error_and_what_was_saved_stays(store):
    chat = store.create_conversation()
    saved = store.add_message(chat.id, role="user", content="short")
    page_count = store._db.execute("PRAGMA page_count").fetchone()[0]  # cap the file at its size
    store._db.execute(f"PRAGMA max_page_count = {page_count}")

    with pytest.raises(StoreError, match="disk is full"):
        store.update_message(saved.id, content="x" * 1_000_000)
    assert store.message(saved.id).content == "short"


def test_errors_name_the_file_and_the_remedy(tmp_path):
    path = tmp_path / "chats.sqlite3"
    readonly = _explain(sqlite3.OperationalError("attempt to write a readonly database"), path)
    assert str(path) in readonly and "read-only" in readonly
    assert "busy" in _explain(sqlite3.OperationalError("database is locked"), path)


CHILD = textwrap.dedent(
    """
    import sqlite3, sys, time
    from gpt_oss_desktop.app.recorder import ReplyRecorder
    from gpt_oss_desktop.app.store import Store

    store = Store(sys.argv[1])
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Count for me.")
    recorder = ReplyRecorder(store, chat.id, "medium", interval_s=0.05)
    watcher = sqlite3.connect(sys.argv[1])
    for number in range(100000):
        recorder.add_text("final", f"{number} ")
        committed = watcher.execute(
            "SELECT length(content) FROM messages WHERE id = ?", (recorder.current_row_id,)
        ).fetchone()[0]
        print(committed, flush=True)
        time.sleep(0.005)
    """
)


def test_a_reply_killed_mid_stream_keeps_every_committed_write_and_is_marked_interrupted(tmp_path):
    path = tmp_path / "chats.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT
    )
    committed_lengths: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(committed_lengths) < 6 and time.monotonic() < deadline:
            line = child.stdout.readline()
            assert line, "the child stopped early"
            committed_lengths.add(int(line))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(committed_lengths) >= 6, "the reply is written several times while it streams"

    store = Store(path)
    assert store.mark_interrupted_replies() == 1
    (chat,) = store.conversations()
    user, reply = store.messages(chat.id)
    stream = "".join(f"{number} " for number in range(100000))
    assert len(reply.content) >= max(committed_lengths)
    assert stream.startswith(reply.content)
    assert reply.status == "interrupted" and "stopped before this reply finished" in reply.detail
    assert store.mark_interrupted_replies() == 0
    store.close()


def test_kept_versions_are_shown_one_at_a_time_with_what_followed_each(store):
    """Regenerate keeps the reply it replaces; edit keeps the message and all after it; a
    version inside a version (a regenerate after an edit) comes back with it."""
    chat = store.create_conversation()
    question = store.add_message(chat.id, role="user", content="2+2?")
    store.add_message(chat.id, role="assistant", channel="final", content="Four.")

    def shown() -> list[str]:
        return [m.content for m in store.messages(chat.id)]

    store.keep_version(chat.id, store.messages(chat.id)[1].position)  # regenerate
    store.add_message(chat.id, role="assistant", channel="final", content="4")
    assert shown() == ["2+2?", "4"] and store.versions(chat.id) == {question.id: (2, 2)}
    store.show_version(chat.id, question.id, 1)
    assert shown() == ["2+2?", "Four."] and store.versions(chat.id) == {question.id: (1, 2)}

    store.keep_version(chat.id, question.position)  # edit the first message
    store.add_message(chat.id, role="user", content="3+3?")
    store.add_message(chat.id, role="assistant", channel="final", content="Six.")
    assert shown() == ["3+3?", "Six."] and store.versions(chat.id) == {None: (2, 2)}
    assert store.search("four") == [], "search reads the shown version"
    store.show_version(chat.id, None, 1)
    assert shown() == ["2+2?", "Four."]
    assert store.versions(chat.id) == {None: (1, 2), question.id: (1, 2)}, "the inner versions came back with it"
    store.show_version(chat.id, question.id, 2)
    assert shown() == ["2+2?", "4"]


def test_a_database_from_before_versions_opens_with_its_chats_shown(tmp_path):
    import sqlite3

    from gpt_oss_desktop.app.migrations import MIGRATIONS, migrate

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, MIGRATIONS[:2])  # the schema before versions
    old.execute("INSERT INTO conversations (title, created_at, updated_at, start_date) VALUES ('Old', 0, 0, '2025-01-01')")
    old.execute("INSERT INTO messages (conversation_id, position, role, content, started_at) VALUES (1, 0, 'user', 'Hi', 0)")
    old.close()
    reopened = Store(path)
    assert [m.content for m in reopened.messages(1)] == ["Hi"] and reopened.versions(1) == {}
    reopened.close()
