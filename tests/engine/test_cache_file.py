"""Prompt caches on disk (mlx_model.cache_file): a chat reopened in a new engine prefills only its
new message and computes what the engine that never stopped computes, bit for bit; a truncated,
damaged or foreign file is refused with a note; the disk budget drops the least recently used."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import mlx.core as mx
import pytest
from support.harmony_model import EXCHANGES, START_DATE
from support.prefill_logits import reply

from gpt_oss_desktop.mlx_model.cache_file import CacheFileError, CacheStamp, CacheStore, load
from gpt_oss_desktop.mlx_model.chat import Chat
from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.forward import ForwardPass
from gpt_oss_desktop.mlx_model.loader import LoadOptions
from gpt_oss_desktop.mlx_model.prompt_cache import PromptCache

MIB = 1024**2


def open_engine(folder: Path) -> Engine:
    return Engine.load(folder, context_length=1024, dtype=mx.float32)


def first_turns(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Chat:
    conversation = Chat(start_date=START_DATE, reasoning_level="low")
    for exchange in (EXCHANGES["sum"], EXCHANGES["colour"]):
        conversation.add_user(exchange.question)
        reply(engine, conversation, monkeypatch)
    return conversation


@pytest.fixture()
def store(tmp_path: Path) -> CacheStore:
    return CacheStore(tmp_path / "prompt-caches", budget_bytes=256 * MIB)


def test_a_reopened_chat_prefills_only_its_new_message_and_computes_the_same(harmony_model_dir, store, monkeypatch):
    running = open_engine(harmony_model_dir)
    conversation = first_turns(running, monkeypatch)
    assert running.save_prompt_cache(store, "chat-1", conversation)

    reopened = open_engine(harmony_model_dir)  # a new process, as after quitting
    later = dataclasses.replace(conversation, messages=list(conversation.messages))
    assert reopened.restore_prompt_cache(store, "chat-1", later) is None
    conversation.add_user(EXCHANGES["sum"].question)
    later.add_user(EXCHANGES["sum"].question)
    kept, kept_logits = reply(running, conversation, monkeypatch)
    again, again_logits = reply(reopened, later, monkeypatch)

    assert again.cached_tokens == kept.cached_tokens > 0
    assert again.prompt_tokens - again.cached_tokens < 25  # the new question, not the chat
    assert mx.array_equal(again_logits, kept_logits).item()  # bit for bit
    cold = ForwardPass(reopened.model, PromptCache(reopened.model)).prefill(reopened.last_prompt).logits
    assert mx.abs(cold - again_logits).max().item() <= 1e-4 * mx.abs(cold).max().item()
    assert later.messages[-1] == conversation.messages[-1]


@pytest.mark.parametrize("kv_bits", [16, 8])
def test_the_file_holds_the_cache_bit_for_bit(harmony_model_dir, store, monkeypatch, kv_bits):
    engine = Engine.load(harmony_model_dir, context_length=1024, dtype=mx.float32, options=LoadOptions(kv_bits=kv_bits))
    conversation = first_turns(engine, monkeypatch)
    engine.save_prompt_cache(store, "chat-1", conversation)
    saved = engine.caches.best_for(engine.prompt_tokens(conversation)).cache.fork(engine.prompt_tokens(conversation))
    read = load(store.path("chat-1"), engine.model, engine.cache_stamp)
    assert read.tokens == saved.tokens and sorted(read.checkpoints) == sorted(saved.checkpoints)
    for mine, theirs in zip(saved.layers, read.layers):
        assert mine.offset == theirs.offset and len(mine.state) == len(theirs.state)
        for a, b in zip(mine.state, theirs.state):
            assert mx.array_equal(a[:, :, : mine.offset], b[:, :, : mine.offset]).item()


def saved_file(harmony_model_dir, store, monkeypatch) -> tuple[Engine, Chat, Path]:
    engine = open_engine(harmony_model_dir)
    conversation = first_turns(engine, monkeypatch)
    assert engine.save_prompt_cache(store, "chat-1", conversation)
    return open_engine(harmony_model_dir), conversation, store.path("chat-1")


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # in the arrays, past the header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "why"), [(truncate, "not a readable cache file"),
                                             (flip_a_byte, "do not match its checksum")])
def test_a_damaged_file_is_refused_with_a_note_and_removed(harmony_model_dir, store, monkeypatch, damage, why):
    engine, conversation, path = saved_file(harmony_model_dir, store, monkeypatch)
    damage(path)
    note = engine.restore_prompt_cache(store, "chat-1", conversation)
    assert note is not None and why in note and str(path) in note
    assert not path.exists()
    assert len(engine.caches.entries) == 1 and not engine.cache.tokens  # nothing of it was used
    conversation.add_user(EXCHANGES["sum"].question)
    stats, _ = reply(engine, conversation, monkeypatch)
    assert stats.cached_tokens == 0  # read afresh


def test_a_file_from_other_options_or_another_model_is_refused(harmony_model_dir, store, monkeypatch, tmp_path):
    engine, conversation, path = saved_file(harmony_model_dir, store, monkeypatch)
    rounded = CacheStamp.of(harmony_model_dir, LoadOptions(dense_bits=8), mx.float32)
    with pytest.raises(CacheFileError, match="other load options"):
        load(path, engine.model, rounded)
    with pytest.raises(CacheFileError, match="other load options"):
        load(path, engine.model, CacheStamp.of(harmony_model_dir, LoadOptions(kv_bits=8), mx.float32))
    with pytest.raises(CacheFileError, match="other load options"):
        load(path, engine.model, CacheStamp.of(harmony_model_dir, LoadOptions(), mx.bfloat16))

    other = tmp_path / "other-model"  # the same weights under another config: another checkpoint
    shutil.copytree(harmony_model_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["rope_theta"] = config.get("rope_theta", 150000) * 2
    (other / "config.json").write_text(json.dumps(config))
    foreign = Engine.load(other, context_length=1024, dtype=mx.float32)
    note = foreign.restore_prompt_cache(store, "chat-1", conversation)
    assert note is not None and "another model checkpoint" in note
    assert not path.exists() and not foreign.cache.tokens


def test_the_disk_budget_drops_the_least_recently_used(harmony_model_dir, tmp_path, monkeypatch):
    engine = open_engine(harmony_model_dir)
    chats = {}
    for key, exchange in (("a", "sum"), ("b", "colour"), ("c", "sum")):
        chats[key] = Chat(start_date=START_DATE, reasoning_level={"a": "low", "b": "medium", "c": "high"}[key])
        chats[key].add_user(EXCHANGES[exchange].question)
        reply(engine, chats[key], monkeypatch)
    sizes = {}
    roomy = CacheStore(tmp_path / "roomy", budget_bytes=1 << 40)
    for key in chats:
        engine.save_prompt_cache(roomy, key, chats[key])
        sizes[key] = roomy.path(key).stat().st_size

    store = CacheStore(tmp_path / "caches", budget_bytes=sizes["a"] + sizes["b"] + sizes["c"] - 1)
    for key in ("a", "b"):
        assert engine.save_prompt_cache(store, key, chats[key])
    os.utime(store.path("a"), ns=(1, 1))
    os.utime(store.path("b"), ns=(2, 2))
    assert store.load("a", engine.model, engine.cache_stamp)[0] is not None  # "a" is now the most recent
    assert engine.save_prompt_cache(store, "c", chats["c"])
    assert [p.exists() for p in map(store.path, "abc")] == [True, False, True]

    tiny = CacheStore(tmp_path / "tiny", budget_bytes=sizes["a"] - 1)
    assert not engine.save_prompt_cache(tiny, "a", chats["a"])  # alone over the budget: not kept
    assert tiny.files() == []
