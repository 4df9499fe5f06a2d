"""The app's tools end to end: the window, session and engine thread as main() builds them, on
the tiny model trained to search the user's library, open the hit, run python, call a function
and answer with a citation (tests/support/tool_model.py). Here the function is an MCP server's
tool (an SDK server over stdio, written by the test), python runs in the real sandbox, and the
user's consent is given or refused by clicking the approval dialog's buttons."""

from __future__ import annotations

import shutil
import sys

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, QUrl
from support.harmony_model import START_DATE
from support.mcp_notes import record_answer_mcp_config
from support.tool_model import PYTHON_RESULT, QUESTION, RECORD_RESULT, browser_pages, final_answer, library_folder

from gpt_oss_desktop.app.chat_tools import ChatTools
from gpt_oss_desktop.app.model_session import ModelSession
from gpt_oss_desktop.app.session import ChatSession
from gpt_oss_desktop.app.settings import Key
from gpt_oss_desktop.app.window import MainWindow
from gpt_oss_desktop.app.worker import EngineHost

HAS_SANDBOX = shutil.which("bwrap") is not None if sys.platform.startswith("linux") else sys.platform == "darwin"
REPLY_TIMEOUT_MS = 120_000
REFUSED = "[ERROR] The user did not allow this call; it was not run."
@pytest.fixture(scope="module")
def tool_model_dir():
    from support.tool_model import trained_tool_model

    return trained_tool_model()


@pytest.fixture
def app(qtbot, store, settings, data_dir, tmp_path, tool_model_dir):
    """The app with Settings › Tools set up: the trained library, python, and an MCP server
    whose tool has the name and schema of the model's script."""
    settings.set_value(Key.TEMPERATURE, 0.0)
    settings.set_value(Key.MAX_NEW_TOKENS, 80)
    settings.set_value(Key.CONTEXT_LENGTH, 2048)
    settings.set_library_folders([str(library_folder())])
    settings.set_value(Key.PYTHON, True)
    settings.set_value(Key.PYTHON_TIMEOUT_SECONDS, 60)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(record_answer_mcp_config(tmp_path), data_dir / "mcp.json")
    engine = EngineHost()
    session = ChatSession(store, settings, engine, ModelSession(settings, engine, models_dir=data_dir / "models"))
    window = MainWindow(session, settings, data_dir / "models")
    window.show()
    with qtbot.waitSignal(session.model.model_loaded, timeout=REPLY_TIMEOUT_MS):
        window.open_model(str(tool_model_dir))
    yield window
    assert engine.shutdown(20_000)
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _answer_with(window: MainWindow, choices: list[str], asked: list[str]) -> None:
    """Click the approval dialog's buttons in this order as the questions come."""

    def click(request) -> None:
        asked.append(request.recipient)
        choice = choices.pop(0) if choices else "deny"
        QTimer.singleShot(0, lambda: window.approval.choices[choice].click())

    window.session.approval_requested.connect(click)


def _open_chat(window: MainWindow) -> int:
    """A chat on the date the model was trained with (its system prompt's date)."""
    chat = window.session.store.create_conversation(reasoning_level="low", start_date=START_DATE)
    window.session.open_conversation(chat.id)
    return chat.id


def _send(qtbot, window: MainWindow, text: str) -> None:
    window.chat.composer.input.setPlainText(text)
    with qtbot.waitSignal(window.session.reply_finished, timeout=REPLY_TIMEOUT_MS):
        qtbot.keyClick(window.chat.composer.input, Qt.Key.Key_Return)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SANDBOX, reason="the script's python call needs the sandbox (bubblewrap on Linux)")
def test_a_chat_answers_from_the_library_with_a_citation_runs_python_and_an_mcp_tool(app, qtbot, store, tmp_path):
    asked: list[str] = []
    _answer_with(app, ["once", "chat"], asked)
    chat_id = _open_chat(app)
    _send(qtbot, app, QUESTION)

    assert asked == ["python", "functions.record_answer"]
    records = store.messages(chat_id)
    tools = [r for r in records if r.role == "tool"]
    searched, opened = browser_pages(library_folder())
    assert [(r.author_name, r.content, r.channel) for r in tools] == [
        ("browser.search", searched, "analysis"), ("browser.open", opened, "analysis"),
        ("python", PYTHON_RESULT, "analysis"), ("functions.record_answer", RECORD_RESULT, "commentary")]
    assert all(r.stats["ok"] and r.stats["seconds"] >= 0 for r in tools)
    assert (tmp_path / "calls.jsonl").read_text() == '{"answer": "ten"}\n'  # the MCP server ran it
    answer = records[-1]
    assert (answer.role, answer.content, answer.status) == ("assistant", final_answer(opened), "complete")

    # The citation leads to the file and its line, shown as a link named by the note's title.
    note = library_folder() / "launch.md"
    (citation,) = answer.attachments["citations"]
    assert (citation["path"], citation["file_lines"], citation["title"]) == (str(note), [3, 3], "Launch")
    href = QUrl.fromLocalFile(str(note)).toString(QUrl.ComponentFormattingOption.FullyEncoded)
    bubble = app.chat.bubbles[-1]
    assert href in bubble.view.document().toHtml() and "Launch, line 3" in bubble.view.toPlainText()
    assert bubble.text == final_answer(opened)  # Copy gives the answer as written

    # The dock shows each call and its result with how long it took; the chat remembers the
    # consent given for it and the browser's pages, so a reopened chat still links its sources.
    panel = app.panel.text.toPlainText()
    assert "→ Called browser.search" in panel and "← browser.search returned in " in panel
    assert "← functions.record_answer returned in " in panel
    assert store.conversation(chat_id).tools["allowed"] is True
    assert app.tools_button.allowed_action.isChecked()
    assert len(store.browser_state(chat_id)["pages"]) == 2
    app.session.new_conversation()
    app.session.open_conversation(chat_id)
    assert href in app.chat.bubbles[-1].view.document().toHtml()


@pytest.mark.slow
def test_a_refused_call_is_answered_so_and_nothing_runs(app, qtbot, store, data_dir):
    asked: list[str] = []
    _answer_with(app, ["deny"], asked)
    chat_id = _open_chat(app)
    _send(qtbot, app, QUESTION)

    assert asked[0] == "python"
    records = store.messages(chat_id)
    python = next(r for r in records if r.role == "tool" and r.author_name == "python")
    assert (python.content, python.stats["ok"]) == (REFUSED, False)
    assert not (data_dir / "python" / f"chat-{chat_id}").exists()  # no kernel was started
    assert records[0].content == QUESTION and app.session.busy is False
    assert app.approval is None or not app.approval.isVisible()
    assert "← python failed in " in app.panel.text.toPlainText()
    assert not ChatTools.from_stored(store.conversation(chat_id).tools).allowed


@pytest.mark.slow
def test_a_chat_with_its_tools_switched_off_offers_none(app, qtbot, store):
    """The chat's own switches: with the browser, python and MCP off the prompt declares no tool."""
    chat_id = _open_chat(app)
    app.tools_button.actions_by_name["browser"].setChecked(False)
    app.tools_button.actions_by_name["python"].setChecked(False)
    app.tools_button.actions_by_name["mcp"].setChecked(False)
    _send(qtbot, app, QUESTION)
    engine = app.session.engine.worker.engine
    header = engine.tokenizer.decode(engine.last_prompt).split("<|start|>user")[0]  # system, developer
    assert "namespace browser" not in header and "## python" not in header and "record_answer" not in header
    assert store.conversation(chat_id).tools == {"browser": False, "python": False, "mcp": False,
                                                                "allowed": False}
