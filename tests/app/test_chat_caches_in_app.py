"""The chats' prompt caches survive quitting: the real app on the trained tiny model, offscreen
(the helpers are test_app_with_engine's). A chat answered, the app quit, a new app on the same
data folder: the chat's next reply prefills only its new message and answers as a cold run does.
Switching chats writes the one left and reads it back when it is next answered; a damaged file or
one made with other load options is refused with a note and the chat answers cold; the disk
budget drops the least recently used file; deleting a chat deletes its file."""
# ruff: noqa: F811 - its fixtures are imported, and then named as test parameters

from __future__ import annotations

import functools
import os
import shutil

import mlx.core as mx
import pytest
import test_app_with_engine
from support.harmony_model import EXCHANGES
from test_app_with_engine import REPLY_TIMEOUT_MS, greedy, start_app  # noqa: F401 - fixtures used by name

from gpt_oss_desktop.app.chat_caches import FOLDER_NAME, cache_key
from gpt_oss_desktop.app.settings import Key
from gpt_oss_desktop.app.store import Store
from gpt_oss_desktop.app.transcript import chat_for
from gpt_oss_desktop.app.worker import EngineApi
from gpt_oss_desktop.mlx_model import GIB, CacheStore, Engine, EngineError, Stats

SUM, COLOUR = EXCHANGES["sum"], EXCHANGES["colour"]


def cache_path(data_dir, conversation_id: int):
    return CacheStore(data_dir / FOLDER_NAME, GIB).path(cache_key(conversation_id))


def quit_app(app) -> None:
    """As main() quits: the window closes (the event loop ends), then the engine thread shuts down."""
    app.window.close()
    app.close()


def reply_stats(app, text: str) -> Stats:
    """Send `text` in the open chat; the reply's Stats, as the status bar got them."""
    got: list[Stats] = []
    app.session.stats.connect(got.append)
    app.send(text)
    app.session.stats.disconnect(got.append)
    return got[-1]


def last_prompt_tokens(app, conversation_id: int) -> int:
    """The tokens of the prompt the chat's last answer was written to (its history up to its last
    question), counted on the idle engine: what a cache kept from that reply reuses of the next
    prompt. Harmony renders the last answer again without its chain of thought, so the next reply
    reads that answer and the new message; an engine that never stopped reads the same."""
    records = app.session.store.messages(conversation_id)
    last_question = max(i for i, record in enumerate(records) if record.role == "user")
    asked = chat_for(app.session.store.conversation(conversation_id), records[: last_question + 1])
    return app.engine.worker.engine.count_tokens(asked)


@pytest.fixture
def reopen(start_app, tmp_path):
    """Close the store and start a new app on the same data folder and chat database."""
    stores: list[Store] = []

    def again():
        stores.append(Store(tmp_path / "chats.sqlite3"))
        return start_app(stores[-1])

    yield again
    for opened in stores:
        opened.close()


def test_a_chat_reopened_after_quitting_prefills_only_its_new_message_and_answers_as_cold(
    start_app, reopen, store, data_dir
):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    app.send(SUM.question)
    app.send(COLOUR.question)
    quit_app(app)
    store.close()
    assert cache_path(data_dir, chat_id).is_file(), "quitting wrote the chat's cache"

    again = reopen()
    again.session.open_conversation(chat_id)
    history = last_prompt_tokens(again, chat_id)
    warm = reply_stats(again, SUM.question)
    warm_answer = again.store.messages(chat_id)[-1]
    assert warm.cached_tokens == history, "all of the history but the last answer and the new message"
    assert warm.prompt_tokens - warm.cached_tokens < 25
    quit_app(again)
    again.store.close()

    shutil.rmtree(data_dir / FOLDER_NAME)  # a cold run of the same prompt: regenerate the last reply
    cold_app = reopen()
    cold_app.session.open_conversation(chat_id)
    with cold_app.qtbot.waitSignal(cold_app.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
        cold_app.window.regenerate_action.trigger()
    cold = cold_app.store.messages(chat_id)[-1]
    assert cold.stats["cached_tokens"] == 0 and cold.stats["prompt_tokens"] == warm.prompt_tokens
    assert (warm_answer.reasoning, warm_answer.content) == (cold.reasoning, cold.content) and cold.content


@pytest.fixture
def one_cache_in_memory(monkeypatch):
    """An engine that keeps only the cache in use in memory, so a chat left is read back from disk."""
    api = EngineApi(functools.partial(Engine.load, dtype=mx.float32, cache_budget_bytes=1), EngineError)
    monkeypatch.setattr(test_app_with_engine, "float32_engine", lambda: api)


def test_switching_chats_writes_the_one_left_and_reads_it_back_for_its_next_reply(
    one_cache_in_memory, start_app, store, data_dir
):
    app = start_app(store)
    first = app.open_new_chat("medium")
    app.send(SUM.question)
    second = app.open_new_chat("medium")  # leaving the first chat writes its cache
    app.qtbot.waitUntil(cache_path(data_dir, first).is_file, timeout=REPLY_TIMEOUT_MS)
    app.send(COLOUR.question)  # the engine's memory now holds this chat only

    app.session.open_conversation(first)
    history = last_prompt_tokens(app, first)
    stats = reply_stats(app, COLOUR.question)
    assert stats.cached_tokens == history
    assert store.messages(first)[-1].content == COLOUR.final
    app.qtbot.waitUntil(cache_path(data_dir, second).is_file, timeout=REPLY_TIMEOUT_MS)

    app.session.delete(second)
    app.qtbot.waitUntil(lambda: not cache_path(data_dir, second).exists(), timeout=REPLY_TIMEOUT_MS)


def flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # in the arrays, past the header
    path.write_bytes(bytes(data))


def truncate(path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize(("spoil", "why"), [
    (flip_a_byte, "do not match its checksum"),
    (truncate, "not a readable cache file"),
    (lambda _path: None, "made with other load options"),  # reopened with an 8-bit KV cache
])
def test_a_refused_cache_file_is_noted_and_the_chat_answers_cold(start_app, reopen, store, data_dir, greedy, spoil, why):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    app.send(SUM.question)
    quit_app(app)
    store.close()
    path = cache_path(data_dir, chat_id)
    spoil(path)
    if "options" in why:
        greedy.set_value(Key.MEMORY_MODE, "manual")
        greedy.set_value(Key.KV_BITS, 8)

    again = reopen()
    notes: list[str] = []
    again.session.cache_note.connect(notes.append)
    again.session.open_conversation(chat_id)
    stats = reply_stats(again, COLOUR.question)
    assert len(notes) == 1 and why in notes[0] and str(path) in notes[0]
    assert why in again.window.status.currentMessage()
    assert stats.cached_tokens == 0, "read afresh, nothing of the file used"
    assert again.store.messages(chat_id)[-1].content == COLOUR.final


def test_the_disk_budget_drops_the_least_recently_used_chat_cache(start_app, store, data_dir, greedy):
    app = start_app(store)
    first = app.open_new_chat("medium")
    app.send(SUM.question)
    second = app.open_new_chat("medium")
    app.qtbot.waitUntil(cache_path(data_dir, first).is_file, timeout=REPLY_TIMEOUT_MS)
    size = cache_path(data_dir, first).stat().st_size
    greedy.set_value(Key.CHAT_CACHE_GIB, 1.5 * size / GIB)  # room for one chat's cache, not two
    app.session.apply_cache_budget()
    app.send(COLOUR.question)

    app.session.open_conversation(first)  # leaving the second chat writes it, past the budget
    # The engine thread renames the new file into place, then evicts: wait for the whole write.
    app.qtbot.waitUntil(lambda: cache_path(data_dir, second).is_file() and not cache_path(data_dir, first).exists(),
                        timeout=REPLY_TIMEOUT_MS)
    assert not cache_path(data_dir, first).exists()
    assert [p.name for p in (data_dir / FOLDER_NAME).glob("*.safetensors")] == [cache_path(data_dir, second).name]


def test_the_kv_cache_setting_reaches_the_engine(start_app, store, greedy):
    greedy.set_value(Key.MEMORY_MODE, "manual")
    greedy.set_value(Key.KV_BITS, 8)
    app = start_app(store)
    assert app.session.model.load_options.kv_bits == 8
    app.open_new_chat("medium")
    app.send(SUM.question)
    engine = app.engine.worker.engine
    assert {layer.bits for layer in engine.cache.layers if hasattr(layer, "bits")} == {8}
    assert "8-bit KV cache" in app.window.status.model.text()
