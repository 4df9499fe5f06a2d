"""Prompt caches the pool drops go to disk under their tokens (mlx_model.cache_spill, what
gpt-oss-serve's --cache-dir keeps): a conversation continued in a new engine reads its file back
and computes what an engine that kept it in memory computes, bit for bit; covered and short
caches are not written, a longer file replaces the one it covers, a file from other options is
left alone, a damaged one is refused and removed, and a full disk costs a prefill, not a reply."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

import mlx.core as mx
import pytest
from support.harmony_model import EXCHANGES, START_DATE
from support.prefill_logits import reply as reply_with_logits

from gpt_oss_desktop.mlx_model.cache_file import CacheStore
from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.harmony import text_of
from gpt_oss_desktop.mlx_model.loader import LoadOptions

MIB = 1024**2
ONE_CACHE = 1  # bytes: the pool keeps only the cache in use, so a second conversation drops the first


def reply(engine: Engine, chat: Chat, monkeypatch: pytest.MonkeyPatch):
    """A server conversation's reply: its cache is one to keep on disk."""
    return reply_with_logits(engine, chat, monkeypatch, keep_on_disk=True)


def open_engine(folder: Path, store: CacheStore | None = None, min_tokens: int = 1, kv_bits: int = 16,
                **budget) -> Engine:
    engine = Engine.load(folder, context_length=1024, dtype=mx.float32, options=LoadOptions(kv_bits=kv_bits),
                         **budget)
    if store is not None:
        engine.spill_prompt_caches(store, min_tokens=min_tokens)
    return engine


def conversation(level: str, *exchanges: str) -> Chat:
    chat = Chat(start_date=START_DATE, reasoning_level=level)
    for name in exchanges:
        chat.add_user(EXCHANGES[name].question)
    return chat


def answered(engine: Engine, chat: Chat, monkeypatch: pytest.MonkeyPatch, *more: str) -> Chat:
    """`chat` answered, then each of `more` asked and answered."""
    reply(engine, chat, monkeypatch)
    for name in more:
        chat.add_user(EXCHANGES[name].question)
        reply(engine, chat, monkeypatch)
    return chat


def copy(chat: Chat) -> Chat:
    return dataclasses.replace(chat, messages=list(chat.messages))


@pytest.fixture()
def store(tmp_path: Path) -> CacheStore:
    return CacheStore(tmp_path / "spilled", budget_bytes=256 * MIB)


def spill_one(harmony_model_dir: Path, store: CacheStore, monkeypatch: pytest.MonkeyPatch) -> Chat:
    """A two-turn conversation dropped from a one-cache pool by a second one: its file is written."""
    engine = open_engine(harmony_model_dir, store, cache_budget_bytes=ONE_CACHE)
    first = answered(engine, conversation("low", "sum"), monkeypatch, "colour")
    held = list(engine.cache.tokens)
    answered(engine, conversation("medium", "colour"), monkeypatch)  # another conversation: the first is dropped
    files = store.files()
    assert len(files) == 1 and store.summary(files[0]).tokens == held
    return first


def test_a_dropped_cache_is_read_back_by_a_new_engine_and_computes_the_same(harmony_model_dir, store, monkeypatch):
    first = spill_one(harmony_model_dir, store, monkeypatch)
    kept = open_engine(harmony_model_dir)  # an engine that never let the conversation go
    again = answered(kept, conversation("low", "sum"), monkeypatch, "colour")
    assert again.messages == first.messages  # greedy: the same conversation
    restarted = open_engine(harmony_model_dir, store)

    later = copy(first)
    again.add_user(EXCHANGES["sum"].question)
    later.add_user(EXCHANGES["sum"].question)
    kept_stats, kept_logits = reply(kept, again, monkeypatch)
    stats, logits = reply(restarted, later, monkeypatch)

    assert stats.cached_tokens == kept_stats.cached_tokens > 0
    assert stats.prompt_tokens - stats.cached_tokens < 25  # the new question, not the conversation
    assert mx.array_equal(logits, kept_logits).item()  # bit for bit
    assert later.messages[-1] == again.messages[-1]


def test_a_longer_file_replaces_the_one_it_covers(harmony_model_dir, store, monkeypatch):
    first = spill_one(harmony_model_dir, store, monkeypatch)
    restarted = open_engine(harmony_model_dir, store, cache_budget_bytes=ONE_CACHE)
    first.add_user(EXCHANGES["sum"].question)
    reply(restarted, first, monkeypatch)
    longer = list(restarted.cache.tokens)
    answered(restarted, conversation("high", "sum"), monkeypatch)  # drops the continued conversation
    files = store.files()
    assert [store.summary(path).tokens for path in files] == [longer]


def test_shutdown_writes_what_the_pool_holds_once(harmony_model_dir, store, monkeypatch):
    engine = open_engine(harmony_model_dir, store)
    chats = [answered(engine, conversation(level, "sum"), monkeypatch) for level in ("low", "medium")]
    assert store.files() == []  # nothing dropped yet
    assert engine.save_spilled_caches() == 2
    assert engine.save_spilled_caches() == 0  # the files already hold them

    restarted = open_engine(harmony_model_dir, store)
    for chat in chats:
        chat.add_user(EXCHANGES["colour"].question)
        stats, _ = reply(restarted, chat, monkeypatch)
        assert stats.prompt_tokens - stats.cached_tokens < 25


def test_a_chat_the_app_saves_by_its_id_is_not_written_here(harmony_model_dir, store, monkeypatch):
    engine = open_engine(harmony_model_dir, store, cache_budget_bytes=ONE_CACHE)
    for level in ("low", "medium"):
        reply_with_logits(engine, conversation(level, "sum"), monkeypatch)  # not keep_on_disk: the app's chats
    assert engine.save_spilled_caches() == 0 and store.files() == []


def test_short_caches_are_not_written(harmony_model_dir, store, monkeypatch):
    engine = open_engine(harmony_model_dir, store, min_tokens=10_000)
    answered(engine, conversation("low", "sum"), monkeypatch)
    assert engine.save_spilled_caches() == 0 and store.files() == []


def test_a_file_from_other_options_is_left_alone_and_a_damaged_one_removed(harmony_model_dir, store, monkeypatch):
    first = spill_one(harmony_model_dir, store, monkeypatch)
    (path,) = store.files()
    first.add_user(EXCHANGES["sum"].question)

    eight_bit = open_engine(harmony_model_dir, store, kv_bits=8)
    stats, _ = reply(eight_bit, copy(first), monkeypatch)
    assert stats.cached_tokens == 0 and path.exists()  # not this engine's file, nor its to delete

    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # in the arrays: the header still reads, the checksum does not match
    path.write_bytes(bytes(data))
    restarted = open_engine(harmony_model_dir, store)
    stats, _ = reply(restarted, copy(first), monkeypatch)
    assert stats.cached_tokens == 0 and not path.exists()


def test_a_full_disk_costs_a_later_prefill_not_the_reply(harmony_model_dir, store, monkeypatch, caplog):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    engine = open_engine(harmony_model_dir, store, cache_budget_bytes=ONE_CACHE)
    answered(engine, conversation("low", "sum"), monkeypatch)
    monkeypatch.setattr(CacheStore, "save", full)
    second = answered(engine, conversation("medium", "colour"), monkeypatch)
    assert second.messages[-1]["role"] == "assistant" and text_of(second.messages[-1])  # answered
    assert "was not written" in caplog.text and "No space left" in caplog.text
