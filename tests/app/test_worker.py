"""The engine thread's signal plumbing.

These tests use a small in-test double of the engine (it only replays events and records what it
was given) to check that calls are queued onto the worker thread, events come back in order to
the GUI thread, cancel reaches the engine, and failures become messages. What the real engine
does in the app is tested in test_app_with_engine.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

from PySide6.QtCore import QThread

from gpt_oss_desktop.app.worker import EngineApi, EngineHost, EngineWorker
from gpt_oss_desktop.mlx_model import Chat, ExpertPaging, SamplingSettings
from gpt_oss_desktop.mlx_model.events import Done, MessageStart, Stats, TextDelta
from gpt_oss_desktop.mlx_model.loader import LoadOptions


class DoubleError(Exception):
    pass


@dataclass
class EngineDouble:
    info: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(name="double", context_limit=2048))
    threads: list[QThread] = field(default_factory=list)
    cancels: list[threading.Event] = field(default_factory=list)
    fail_with: Exception | None = None
    gate: threading.Event | None = None  # when set up, the next reply waits for it
    paging: ExpertPaging | None = None
    spill_store: object = None

    def reply(self, conversation, sampling, cancel, on_token=None, response_format=None, on_prompt=None, batched=False,
              keep_on_disk=False):
        self.threads.append(QThread.currentThread())
        self.cancels.append(cancel)
        if self.gate is not None:
            gate, self.gate = self.gate, None
            assert gate.wait(10)
        if self.fail_with:
            raise self.fail_with
        yield MessageStart("final", None, None)
        for piece in ("Hel", "lo"):
            yield TextDelta("final", piece)
        yield Stats(10, 0, 2, 0.1, 20.0, 1000, chat_tokens=42)
        yield Done("cancelled" if cancel.is_set() else "return")

    def count_tokens(self, conversation):
        return 42

    def memory_in_use(self):
        return 1000

    def paging_stats(self):
        return self.paging

    def spill_prompt_caches(self, store):
        self.spill_store = store

    def save_spilled_caches(self):
        return 0


def host_with(engine: EngineDouble) -> EngineHost:
    api = EngineApi(load=lambda path, **options: engine, error=DoubleError)
    return EngineHost(EngineWorker(api_factory=lambda: api))


def test_calls_run_on_the_worker_thread_and_events_come_back_in_order(qtbot):
    engine = EngineDouble()
    host = host_with(engine)
    with qtbot.waitSignal(host.worker.loaded):
        host.load("/models/double", 2048, LoadOptions())
    events: list[tuple[int, object]] = []
    measured: list[tuple[int, int, int, ExpertPaging | None]] = []
    host.worker.event.connect(lambda reply_id, event: events.append((reply_id, event)))
    host.worker.measured.connect(lambda *figures: measured.append(figures))
    with qtbot.waitSignal(host.worker.reply_ended):
        reply_id = host.reply(Chat(), SamplingSettings(temperature=0.0))
    assert [type(e).__name__ for _, e in events] == ["MessageStart", "TextDelta", "TextDelta", "Stats", "Done"]
    assert {r for r, _ in events} == {reply_id}
    assert measured[-1] == (42, 2048, 1000, None)
    assert engine.threads == [host.thread] and host.thread is not QThread.currentThread()
    assert host.shutdown()


def test_cancel_reaches_the_engine_even_before_its_reply_starts(qtbot):
    engine = EngineDouble(gate=threading.Event())
    host = host_with(engine)
    with qtbot.waitSignal(host.worker.loaded):
        host.load("/models/double", None, LoadOptions())
    done: dict[int, object] = {}
    host.worker.event.connect(lambda reply_id, event: done.update({reply_id: event}) if isinstance(event, Done) else None)
    gate = engine.gate
    busy = host.reply(Chat(), SamplingSettings())  # holds the worker thread until the gate opens
    queued = host.reply(Chat(), SamplingSettings())
    host.cancel(queued)
    gate.set()
    qtbot.waitUntil(lambda: len(done) == 2, timeout=5000)
    assert done == {busy: Done("return"), queued: Done("cancelled")}
    assert host.shutdown()


def test_engine_errors_become_their_message_and_the_thread_survives(qtbot):
    engine = EngineDouble(fail_with=DoubleError("The model needs 30 GB."))
    host = host_with(engine)
    with qtbot.waitSignal(host.worker.loaded):
        host.load("/models/double", None, LoadOptions())
    with qtbot.waitSignal(host.worker.reply_failed) as failed:
        host.reply(Chat(), SamplingSettings())
    assert failed.args[1] == "The model needs 30 GB."
    engine.fail_with = None
    with qtbot.waitSignal(host.worker.reply_ended):
        host.reply(Chat(), SamplingSettings())
    assert host.shutdown()


def test_a_load_failure_is_reported_with_the_path(qtbot):
    def refuse(path, **options):
        raise FileNotFoundError("config.json")

    api = EngineApi(load=refuse, error=DoubleError)
    host = EngineHost(EngineWorker(api_factory=lambda: api))
    with qtbot.waitSignal(host.worker.load_failed) as failed:
        host.load("/models/missing", None, LoadOptions())
    assert failed.args == ["Could not load the model at /models/missing: config.json"]
    assert host.shutdown()


def test_the_load_gets_the_memory_options_and_measures_report_the_paging(qtbot):
    engine = EngineDouble(paging=ExpertPaging(hits=3, misses=1, bytes_read=4096))
    loads: list[tuple[str, dict]] = []

    def load(path, **arguments):
        loads.append((path, arguments))
        return engine

    host = EngineHost(EngineWorker(api_factory=lambda: EngineApi(load, DoubleError)))
    options = LoadOptions(dense_bits=8, expert_budget_bytes=2**30)
    with qtbot.waitSignal(host.worker.measured) as measured:
        host.load("/models/double", 4096, options)
    assert [(path, arguments["context_length"], arguments["options"]) for path, arguments in loads] == [
        ("/models/double", 4096, options)
    ]
    assert measured.args == [0, 2048, 1000, ExpertPaging(hits=3, misses=1, bytes_read=4096)]
    assert host.shutdown()
