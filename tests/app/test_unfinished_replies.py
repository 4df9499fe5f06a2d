"""Nothing typed or generated is lost, and an unfinished reply says so: a stop in mid-answer is
stored, shown, exported and given back to the model as unfinished; a reply the disk cannot take
stays in memory, shown with the reason, and is written once it can be; a model file changed
under the loaded model stops the next reply with a message instead of a fault. The real app on
the trained tiny model, offscreen (the helpers are test_app_with_engine's)."""
# ruff: noqa: F811 - its fixtures are imported, and then named as test parameters

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import threading

import pytest
from PySide6.QtCore import Qt
from support.harmony_model import EXCHANGES
from test_app_with_engine import REPLY_TIMEOUT_MS, App, greedy, start_app  # noqa: F401 - fixtures used by name

from gpt_oss_desktop.app.export import chat_json, chat_markdown
from gpt_oss_desktop.app.session import RETRY_SAVE_MS
from gpt_oss_desktop.app.store import Store
from gpt_oss_desktop.mlx_model.events import TextDelta
from gpt_oss_desktop.mlx_model.harmony import INCOMPLETE_NOTE

SUM, COLOUR = EXCHANGES["sum"], EXCHANGES["colour"]


def stop_after_first_answer_text(app) -> None:
    """Send SUM's question and press Stop once the answer (not the reasoning) has begun."""
    answering, resume = threading.Event(), threading.Event()

    def hold(_reply_id, event) -> None:  # on the engine thread: wait for the Stop to land
        if isinstance(event, TextDelta) and event.channel == "final" and not answering.is_set():
            answering.set()
            resume.wait(10)

    app.engine.worker.event.connect(hold, Qt.ConnectionType.DirectConnection)
    app.window.chat.composer.input.setPlainText(SUM.question)
    with app.qtbot.waitSignal(app.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
        app.qtbot.keyClick(app.window.chat.composer.input, Qt.Key.Key_Return)
        app.qtbot.waitUntil(answering.is_set, timeout=REPLY_TIMEOUT_MS)
        app.qtbot.keyClick(app.window.chat.composer.input, Qt.Key.Key_Escape)  # Stop
        resume.set()
    app.engine.worker.event.disconnect(hold)


def test_a_stop_in_mid_answer_is_stored_shown_exported_and_given_back_as_unfinished(start_app, store):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")

    stop_after_first_answer_text(app)

    _, stopped = store.messages(chat_id)
    assert stopped.status == "cancelled", "never stored as if the model had finished"
    assert stopped.content and SUM.final.startswith(stopped.content) and stopped.content != SUM.final
    assert app.window.chat.bubbles[-1].status.text() == "Stopped."
    conversation = store.conversation(chat_id)
    markdown = chat_markdown(conversation, store.messages(chat_id))
    assert f"{stopped.content}\n\n*Stopped.*" in markdown
    exported = json.loads(chat_json(conversation, store.messages(chat_id)))
    assert exported["messages"][-1]["status"] == "incomplete" and exported["records"][-1]["status"] == "cancelled"

    app.send(COLOUR.question)
    assert stopped.content + INCOMPLETE_NOTE + "<|end|><|start|>user<|message|>" + COLOUR.question in app.last_prompt()


class FillingDisk:
    """The store's connection, failing every write as SQLite does on a full disk while `full`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.full = False

    def execute(self, sql: str, parameters=()):
        if self.full and sql.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._connection.execute(sql, parameters)

    def __getattr__(self, name: str):
        return getattr(self._connection, name)


def test_a_reply_the_full_disk_cannot_take_stays_shown_and_is_written_once_there_is_room(start_app, store, tmp_path):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    disk = store._db = FillingDisk(store._db)
    app.session.reply_started.connect(lambda _level: setattr(disk, "full", True))  # the question is stored

    app.send(SUM.question)

    bubble = app.window.chat.bubbles[-1]
    assert bubble.view.toPlainText().strip() == SUM.final, "the reply does not vanish when it ends"
    assert "Not saved yet" in bubble.status.text() and "disk is full" in bubble.status.text()
    assert not app.window.banner.isHidden() and "disk is full" in app.window.banner.label.text()
    on_disk = Store(tmp_path / "chats.sqlite3").messages(chat_id)  # its empty first row went in before the disk filled
    assert [(m.role, m.content, m.status) for m in on_disk] == [
        ("user", SUM.question, "complete"), ("assistant", "", "streaming")]

    app.window.chat.composer.input.setPlainText(COLOUR.question)
    app.qtbot.keyClick(app.window.chat.composer.input, Qt.Key.Key_Return)
    assert app.window.chat.composer.input.toPlainText() == COLOUR.question, "a send that cannot be stored keeps its text"
    assert not app.session.busy

    disk.full = False  # space was freed: the retry timer writes the reply
    app.qtbot.waitUntil(lambda: app.window.banner.isHidden(), timeout=RETRY_SAVE_MS * 3)
    reopened = Store(tmp_path / "chats.sqlite3")
    _, reply = reopened.messages(chat_id)
    assert (reply.content, reply.reasoning, reply.status) == (SUM.final, SUM.analysis, "complete")
    assert "Not saved" not in bubble.status.text()
    reopened.close()


def test_a_reply_kept_in_memory_is_written_before_the_next_message(start_app, store, tmp_path):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    disk = store._db = FillingDisk(store._db)
    app.session.reply_started.connect(lambda _level: setattr(disk, "full", True))
    app.send(SUM.question)
    app.session.reply_started.disconnect()
    app.session._retry.stop()  # no timer: the next write is what saves it
    disk.full = False

    app.send(COLOUR.question)

    roles = [(m.role, m.content) for m in store.messages(chat_id)]
    assert roles == [("user", SUM.question), ("assistant", SUM.final), ("user", COLOUR.question),
                     ("assistant", COLOUR.final)], "in the order it happened"
    assert app.window.banner.isHidden()


def test_a_model_file_changed_between_replies_stops_the_next_reply_with_a_message(
    qtbot, store, tmp_path, harmony_model_dir, greedy
):
    model = shutil.copytree(harmony_model_dir, tmp_path / "model")
    app = App(qtbot, store, greedy, tmp_path / "models", model)
    try:
        app.open_new_chat("medium")
        app.send(SUM.question)
        shard = sorted(model.glob("*.safetensors"))[-1]
        os.truncate(shard, shard.stat().st_size // 2)  # another program rewrites it under the app

        app.send(COLOUR.question)

        bubble = app.window.chat.bubbles[-1]
        assert str(shard) in bubble.status.text() and "changed size" in bubble.status.text()
        assert "Load the model again" in bubble.status.text()
        assert store.messages(app.session.current.id)[-1].status == "failed"
    finally:
        app.close()


def test_after_a_failed_open_the_status_shows_the_model_still_answering_and_a_later_load_clears_the_banner(
    start_app, store, tmp_path, harmony_model_dir
):
    app = start_app(store)
    app.open_new_chat("medium")
    loaded = app.window.status.model.text()
    assert loaded.startswith(harmony_model_dir.name)
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")

    with app.qtbot.waitSignal(app.session.model.model_failed, timeout=REPLY_TIMEOUT_MS):
        app.window.open_model(str(broken))

    assert not app.window.banner.isHidden() and "broken-model" in app.window.banner.label.text()
    assert app.window.status.model.text() == loaded, "the old model is still loaded and says so"
    app.send(SUM.question)
    assert app.window.chat.bubbles[-1].view.toPlainText().strip() == SUM.final

    with app.qtbot.waitSignal(app.session.model.model_loaded, timeout=REPLY_TIMEOUT_MS):
        app.window.open_model(str(harmony_model_dir))
    assert app.window.banner.isHidden(), "the error went with its cause"


def test_regenerate_and_edit_keep_versions_to_step_through_and_the_prompt_reads_the_shown_one(start_app, store):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    stop_after_first_answer_text(app)
    cut = store.messages(chat_id)[-1].content
    with app.qtbot.waitSignal(app.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
        app.window.regenerate_action.trigger()

    reply = app.window.chat.bubbles[-1]
    assert reply.view.toPlainText().strip() == SUM.final
    assert reply.versions.isVisible() and reply.versions.label.text() == "2/2"
    app.qtbot.mouseClick(reply.versions.previous, Qt.MouseButton.LeftButton)
    reply = app.window.chat.bubbles[-1]
    assert reply.view.toPlainText().strip() == cut and reply.status.text() == "Stopped."
    assert reply.versions.label.text() == "1/2" and not reply.versions.previous.isEnabled()
    conversation = store.conversation(chat_id)
    markdown = chat_markdown(conversation, store.messages(chat_id))
    assert cut in markdown and SUM.final not in markdown, "the export is the shown version"

    app.send(COLOUR.question)
    assert cut + INCOMPLETE_NOTE in app.last_prompt() and SUM.final not in app.last_prompt()

    question = app.window.chat.bubbles[0]
    with app.qtbot.waitSignal(app.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
        app.session.edit_and_resend(question.first_id, COLOUR.question)
    bubbles = app.window.chat.bubbles
    assert [b.role for b in bubbles] == ["user", "assistant"] and bubbles[0].versions.label.text() == "2/2"
    app.qtbot.mouseClick(bubbles[0].versions.previous, Qt.MouseButton.LeftButton)
    texts = [b.view.toPlainText().strip() for b in app.window.chat.bubbles]
    assert len(texts) == 4 and texts[:3] == [SUM.question, cut, COLOUR.question]
    assert app.window.chat.bubbles[1].versions.label.text() == "1/2", "the inner versions came back with it"


@pytest.fixture
def small_filesystem(tmp_path):
    """An 8 MiB tmpfs, where this machine lets the tests mount one (root on Linux); else skipped."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder) -> object:
    """Take every free byte of the filesystem holding `folder`; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as sink:
        try:
            while True:
                sink.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_on_a_real_full_disk_the_reply_is_kept_and_written_once_space_is_freed(start_app, small_filesystem):
    store = Store(small_filesystem / "chats.sqlite3")
    try:
        app = start_app(store)
        chat_id = app.open_new_chat("medium")
        fillers = []
        app.session.reply_started.connect(lambda _level: fillers.append(fill(small_filesystem)))

        app.send(SUM.question)

        bubble = app.window.chat.bubbles[-1]
        assert bubble.view.toPlainText().strip() == SUM.final
        assert "disk is full" in bubble.status.text() and not app.window.banner.isHidden()
        fillers[0].unlink()  # the user frees some space
        app.qtbot.waitUntil(lambda: app.window.banner.isHidden(), timeout=RETRY_SAVE_MS * 3)
        _, reply = store.messages(chat_id)
        assert (reply.content, reply.status) == (SUM.final, "complete")
    finally:
        app.close()
        store.close()
