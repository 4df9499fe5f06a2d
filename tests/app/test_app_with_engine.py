"""The app driving the real engine on a tiny checkpoint trained to answer in harmony form
(tests/support/harmony_model.py): a sent message gets a streamed reply, the reasoning level goes
into the next prompt, the panel shows the reasoning, Stop stops, and a restart keeps the chat.

The engine is loaded in float32, as in the engine's own tests: the tiny model reproduces its
script exactly only at that precision. Everything else is the app as it ships.
"""

from __future__ import annotations

import dataclasses
import functools
import threading

import mlx.core as mx
import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from support.harmony_model import EXCHANGES, START_DATE

from gpt_oss_desktop.app.model_session import ModelSession
from gpt_oss_desktop.app.session import ChatSession
from gpt_oss_desktop.app.settings import Key
from gpt_oss_desktop.app.store import Store
from gpt_oss_desktop.app.window import MainWindow
from gpt_oss_desktop.app.worker import EngineApi, EngineHost, EngineWorker
from gpt_oss_desktop.mlx_model.engine import Engine, EngineError
from gpt_oss_desktop.mlx_model.events import Stats, TextDelta
from gpt_oss_desktop.mlx_model.loader import LoadOptions, load
from gpt_oss_desktop.mlx_model.memory import GIB

SUM, COLOUR = EXCHANGES["sum"], EXCHANGES["colour"]
REPLY_TIMEOUT_MS = 60_000


def float32_engine() -> EngineApi:
    return EngineApi(functools.partial(Engine.load, dtype=mx.float32), EngineError)


@pytest.fixture
def greedy(settings):
    settings.set_value(Key.TEMPERATURE, 0.0)
    settings.set_value(Key.MAX_NEW_TOKENS, 80)
    settings.set_value(Key.CONTEXT_LENGTH, 1024)
    return settings


class App:
    """The window, session and engine thread as main() builds them, on a given store."""

    def __init__(self, qtbot, store: Store, settings, models_dir, model_dir) -> None:
        self.qtbot = qtbot
        self.store = store
        self.closed = False
        self.engine = EngineHost(EngineWorker(api_factory=float32_engine))
        self.session = ChatSession(store, settings, self.engine, ModelSession(settings, self.engine, models_dir=models_dir))
        self.window = MainWindow(self.session, settings, models_dir)
        self.window.show()
        with qtbot.waitSignal(self.session.model.model_loaded, timeout=REPLY_TIMEOUT_MS):
            self.window.open_model(str(model_dir))

    def open_new_chat(self, level: str) -> int:
        """A chat started on the date the tiny model was trained with (its system prompt's date)."""
        chat = self.store.create_conversation(reasoning_level=level, start_date=START_DATE)
        self.session.open_conversation(chat.id)
        return chat.id

    def send(self, text: str) -> None:
        composer = self.window.chat.composer
        composer.input.setPlainText(text)
        with self.qtbot.waitSignal(self.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
            self.qtbot.keyClick(composer.input, Qt.Key.Key_Return)

    def last_prompt(self) -> str:
        engine = self.engine.worker.engine
        return engine.tokenizer.decode(engine.last_prompt)

    def close(self) -> None:
        """Quit as the app does; idempotent, so a test may close before the fixture does."""
        if self.closed:
            return
        self.closed = True
        assert self.engine.shutdown()
        self.window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def start_app(qtbot, greedy, data_dir, harmony_model_dir):
    started: list[App] = []

    def start(store: Store) -> App:
        app = App(qtbot, store, greedy, data_dir / "models", harmony_model_dir)
        started.append(app)
        return app

    yield start
    for app in started:
        app.close()


def test_a_sent_message_gets_a_streamed_reply(start_app, store):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    shown: list[str] = []
    app.session.reply_text.connect(shown.append)
    figures: list[object] = []
    app.session.stats.connect(figures.append)

    app.send(SUM.question)

    assert len(shown) > 1 and shown[-1] == SUM.final, "the answer arrives in pieces"
    assert all(SUM.final.startswith(piece) for piece in shown)
    user, reply = store.messages(chat_id)
    assert (user.content, reply.content, reply.reasoning, reply.status) == (SUM.question, SUM.final, SUM.analysis, "complete")
    assert reply.stats["new_tokens"] > 0 and reply.thought_seconds is not None
    bubble = app.window.chat.bubbles[-1]
    assert bubble.view.toPlainText().strip() == SUM.final
    status = app.window.status
    assert "tok/s" in status.speed.text() and "First token" in status.first_token.text()
    assert [type(each) for each in figures] == [Stats], "the engine's own Stats reach the status bar"
    assert status.speed.text() == f"{figures[0].tokens_per_s:.1f} tok/s" and reply.stats == dataclasses.asdict(figures[0])
    assert status.context.text().startswith("Context ") and "/ 1,024" in status.context.text()
    assert status.memory.text().startswith("Memory ") and "—" not in status.memory.text()


def test_switching_the_level_puts_it_into_the_next_prompt(start_app, store):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    app.window.toggle.buttons["high"].click()
    app.send(SUM.question)
    assert "Reasoning: high" in app.last_prompt()

    app.window.reasoning_level_actions["low"].trigger()
    app.window.regenerate_action.trigger()
    app.qtbot.waitUntil(lambda: not app.session.busy, timeout=REPLY_TIMEOUT_MS)
    assert "Reasoning: low" in app.last_prompt() and "Reasoning: high" not in app.last_prompt()
    (_, reply) = store.messages(chat_id)
    assert reply.reasoning_level == "low" and reply.content == SUM.final
    assert app.window.chat.bubbles[-1].reasoning_level_badge.text() == "Low reasoning"


def test_the_panel_streams_and_keeps_the_reasoning(start_app, store):
    app = start_app(store)
    app.open_new_chat("high")
    streamed: list[str] = []
    app.session.reasoning_text.connect(streamed.append)

    app.send(SUM.question)

    assert "".join(streamed) == SUM.analysis and len(streamed) > 1
    panel = app.window.panel
    assert SUM.analysis in panel.text.toPlainText()
    assert "Reply 1 · High reasoning" in panel.text.toPlainText()
    assert panel.status.text().startswith("Thought for ")
    assert app.window.chat.bubbles[-1].thought.text().startswith("Thought for ")


def test_stop_stops_the_reply_and_regenerate_then_answers_in_full(start_app, store):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    first_token, resume = threading.Event(), threading.Event()

    def hold_after_first_token(_reply_id, event) -> None:  # runs on the engine thread
        if isinstance(event, TextDelta) and not first_token.is_set():
            first_token.set()
            resume.wait(10)

    app.engine.worker.event.connect(hold_after_first_token, Qt.ConnectionType.DirectConnection)
    app.window.chat.composer.input.setPlainText(SUM.question)
    with app.qtbot.waitSignal(app.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
        app.qtbot.keyClick(app.window.chat.composer.input, Qt.Key.Key_Return)
        app.qtbot.waitUntil(first_token.is_set, timeout=REPLY_TIMEOUT_MS)
        assert app.window.stop_action.isEnabled()
        app.window.stop_action.trigger()  # what Esc and ⌘. do
        resume.set()
    app.engine.worker.event.disconnect(hold_after_first_token)

    _, stopped = store.messages(chat_id)
    assert stopped.status == "cancelled"
    assert SUM.analysis.startswith(stopped.reasoning) and len(stopped.reasoning) < len(SUM.analysis)
    assert stopped.content == "" and not app.session.busy and not app.window.stop_action.isEnabled()
    assert app.window.chat.bubbles[-1].status.text() == "Stopped."

    with app.qtbot.waitSignal(app.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
        app.window.regenerate_action.trigger()
    _, answered = store.messages(chat_id)
    assert (answered.content, answered.status) == (SUM.final, "complete")


def test_after_a_restart_the_chat_is_there_and_goes_on(start_app, store, tmp_path):
    app = start_app(store)
    chat_id = app.open_new_chat("medium")
    app.send(SUM.question)
    app.close()
    store.close()

    reopened = Store(tmp_path / "chats.sqlite3")
    assert reopened.mark_interrupted_replies() == 0
    again = start_app(reopened)
    assert [c.id for c in again.session.conversations()] == [chat_id]
    again.session.open_conversation(chat_id)
    texts = [bubble.view.toPlainText().strip() for bubble in again.window.chat.bubbles]
    assert texts == [SUM.question, SUM.final]
    assert SUM.analysis in again.window.panel.text.toPlainText()

    again.send(COLOUR.question)  # the restored chat renders the same prompt the model was trained on
    assert again.window.chat.bubbles[-1].view.toPlainText().strip() == COLOUR.final
    reopened.close()


def test_with_paged_experts_the_reply_is_the_same_and_the_status_bar_shows_the_hit_rate(
    start_app, store, greedy, harmony_model_dir
):
    probe = load(harmony_model_dir, dtype=mx.float32, options=LoadOptions(expert_budget_bytes=10**9))
    config = probe.config
    slots_bytes = probe.model.layers[0].mlp.experts.slot_bytes * config.num_hidden_layers
    greedy.set_value(Key.MEMORY_MODE, "manual")
    greedy.set_value(Key.EXPERT_BUDGET_GIB, (config.num_experts_per_tok + 0.5) * slots_bytes / GIB)  # 4 of 8 experts
    app = start_app(store)
    app.open_new_chat("medium")

    app.send(SUM.question)

    assert app.window.chat.bubbles[-1].view.toPlainText().strip() == SUM.final
    paging = app.engine.worker.engine.paging_stats()  # the engine thread is idle between replies
    assert paging.misses > 0
    status = app.window.status
    assert not status.paging.isHidden() and status.paging.text() == f"Expert hit rate {paging.hit_rate:.0%}"
    assert "experts paged" in status.model.text()


def test_a_reply_says_when_the_oldest_messages_no_longer_fit_the_context(start_app, store, greedy):
    greedy.set_value(Key.CONTEXT_LENGTH, 140)
    greedy.set_value(Key.MAX_NEW_TOKENS, 30)
    app = start_app(store)
    chat_id = app.open_new_chat("low")
    notices: list[str] = []
    for exchange in (SUM, COLOUR, SUM):
        app.send(exchange.question)
        notices.append(app.window.chat.bubbles[-1].status.text())

    prompt = app.last_prompt()
    left_out = 3 - prompt.count(SUM.question) - prompt.count(COLOUR.question)
    assert left_out >= 1
    oldest = "Your oldest message and its reply" if left_out == 1 else f"Your oldest {left_out} messages and their replies"
    notice = f"{oldest} no longer fit in the context and were left out of this reply."
    assert notice in notices[-1] and not app.window.chat.bubbles[-1].status.isHidden()
    assert "no longer fit" not in notices[0]
    assert notice in store.messages(chat_id)[-1].detail, "kept with the reply"
