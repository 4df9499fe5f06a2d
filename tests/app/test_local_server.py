"""Settings › Local server, offscreen, on the real engine over the tiny trained model: turned on,
the openai client gets answers from the model the app holds while the app's own chat replies
on the same engine, the dialog shows the requests in flight, and turned off the port closes; the
Responses API from the app's server: streamed events, a function call answered through a
`previous_response_id` chain that survives turning the server off and on (its store is in the
app's data folder), a stored response read back, and an answer held to a JSON schema; a long
server conversation's prompt cache survives quitting the app."""
# ruff: noqa: F811 - start_app is imported, then named as a test parameter

from __future__ import annotations

import json
import threading
import time

import jsonschema
import openai
import pytest
from PySide6.QtCore import Qt
from support.harmony_model import (
    EXCHANGES,
    START_DATE,
    WEATHER_ANALYSIS,
    WEATHER_CALL,
    WEATHER_FINAL,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    WEATHER_TOOL,
)
from test_app_with_engine import REPLY_TIMEOUT_MS, App, start_app  # noqa: F401 - a fixture used by name

from gpt_oss_desktop.app.local_server import LocalServer, store_path
from gpt_oss_desktop.app.server_settings import LocalServerGroup
from gpt_oss_desktop.app.settings import Key
from gpt_oss_desktop.app.settings_dialog import SettingsDialog
from gpt_oss_desktop.mlx_model import server_cache_dir
from gpt_oss_desktop.mlx_model.events import Done

SUM, COLOUR = EXCHANGES["sum"], EXCHANGES["colour"]


@pytest.fixture
def greedy(settings):
    """Settings under which the tiny model answers its script (as in test_app_with_engine)."""
    settings.set_value(Key.TEMPERATURE, 0.0)
    settings.set_value(Key.MAX_NEW_TOKENS, 80)
    settings.set_value(Key.CONTEXT_LENGTH, 1024)
    return settings


@pytest.fixture
def app(qtbot, greedy, store, data_dir, harmony_model_dir):
    started = App(qtbot, store, greedy, data_dir / "models", harmony_model_dir)
    yield started
    started.close()


@pytest.fixture
def local_server(app: App, greedy):
    server = LocalServer(app.engine, greedy, start_date=lambda: START_DATE)  # the tiny model's date
    server._on_loaded(app.engine.worker.engine.info)  # the model loaded before this controller existed
    yield server
    server.stop()


def turn_on(settings, server: LocalServer, **values) -> None:
    settings.set_value(Key.SERVER_ENABLED, True)
    settings.set_value(Key.SERVER_PORT, 0)  # any free port
    for key, value in values.items():
        settings.set_value(Key[key], value)
    server.apply()


def test_off_by_default(app: App, local_server: LocalServer) -> None:
    local_server.apply()
    assert not local_server.running and local_server.url == ""


def test_the_server_answers_from_the_model_the_app_holds(app: App, local_server: LocalServer, greedy, qtbot) -> None:
    turn_on(greedy, local_server, SERVER_API_KEY="secret")
    assert local_server.running and local_server.url.startswith("http://127.0.0.1:")
    client = openai.OpenAI(base_url=local_server.url, api_key="secret", max_retries=0)
    model_id = app.engine.worker.engine.info.name
    assert [m.id for m in client.models.list().data] == [model_id]

    group = LocalServerGroup(greedy, local_server)
    qtbot.addWidget(group)
    assert group.url.text() == local_server.url and group.status.text().startswith("Running · 0 requests")

    engine = app.engine.worker.engine
    reply = engine.reply
    gate = threading.Event()

    def held_reply(*args, **kwargs):  # holds the server's reply mid-stream until the test has looked
        for event in reply(*args, **kwargs):
            if isinstance(event, Done):
                gate.wait(30)
            yield event

    answers: list = []
    engine.reply = held_reply
    try:
        asking = threading.Thread(target=lambda: answers.append(client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": SUM.question}], temperature=0,
            reasoning_effort="medium")))
        asking.start()
        qtbot.waitUntil(lambda: local_server.in_flight == 1, timeout=REPLY_TIMEOUT_MS)
        qtbot.waitUntil(lambda: "1 request in flight" in group.status.text(), timeout=5000)
        # the app's chat asks meanwhile: it waits its turn on the same engine thread
        chat_id = app.open_new_chat("medium")
        composer = app.window.chat.composer
        composer.input.setPlainText(COLOUR.question)
        qtbot.keyClick(composer.input, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: app.session.busy, timeout=5000)
        time.sleep(0.3)
        assert local_server.in_flight == 1 and not answers  # the server's reply still holds the engine
    finally:
        gate.set()
        asking.join(60)
        engine.reply = reply
    qtbot.waitUntil(lambda: not app.session.busy, timeout=REPLY_TIMEOUT_MS)
    assert answers[0].choices[0].message.content == SUM.final
    assert answers[0].choices[0].message.model_extra["reasoning"] == SUM.analysis
    assert app.store.messages(chat_id)[-1].content == COLOUR.final
    qtbot.waitUntil(lambda: group.status.text().startswith("Running · 0 requests"), timeout=5000)

    greedy.set_value(Key.SERVER_ENABLED, False)
    local_server.apply()
    assert not local_server.running and group.status.text() == "Off"
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_a_network_address_needs_a_key(app: App, local_server: LocalServer, greedy, qtbot, data_dir) -> None:
    turn_on(greedy, local_server, SERVER_HOST="0.0.0.0")
    assert not local_server.running and "0.0.0.0" in local_server.error
    dialog = SettingsDialog(greedy, data_dir / "models", None, local_server)
    qtbot.addWidget(dialog)
    group = dialog.server_group
    group.enabled.setChecked(True)
    group.host.setCurrentIndex(group.host.findData("0.0.0.0"))
    group.key.setText("")
    dialog.accept()
    assert dialog.result() == 0 and "API key" in group.status.text()  # stays open, says why



ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"enum": ["yes", "no"]}, "count": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["verdict", "count"],
    "additionalProperties": False,
}


def test_the_responses_api_from_the_app(app: App, local_server: LocalServer, greedy, data_dir) -> None:
    turn_on(greedy, local_server)
    client = openai.OpenAI(base_url=local_server.url, api_key="unused", max_retries=0)
    model_id = app.engine.worker.engine.info.name

    events = list(client.responses.create(model=model_id, input=SUM.question, temperature=0,
                                          reasoning={"effort": "medium"}, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (events[0].type, events[-1].type) == ("response.created", "response.completed")
    assert "".join(e.delta for e in events if e.type == "response.reasoning_text.delta") == SUM.analysis
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == SUM.final

    tools = [{"type": "function", **WEATHER_TOOL}]
    first = client.responses.create(model=model_id, input=WEATHER_QUESTION, tools=tools, temperature=0)
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    call = first.output[1]
    assert (call.name, call.arguments) == ("get_weather", WEATHER_CALL)
    assert store_path().is_relative_to(data_dir) and store_path().is_file()

    greedy.set_value(Key.SERVER_ENABLED, False)  # off and on again: the chain is read from the store
    local_server.apply()
    turn_on(greedy, local_server)
    client = openai.OpenAI(base_url=local_server.url, api_key="unused", max_retries=0)
    assert client.responses.retrieve(first.id).output[1].call_id == call.call_id
    second = client.responses.create(
        model=model_id, previous_response_id=first.id, tools=tools, temperature=0,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": WEATHER_RESULT}])
    assert second.previous_response_id == first.id and second.output_text == WEATHER_FINAL
    assert second.usage.input_tokens_details.cached_tokens > first.usage.input_tokens
    assert WEATHER_ANALYSIS in app.engine.worker.engine.tokenizer.decode(app.engine.worker.engine.last_prompt)

    held = client.responses.create(
        model=model_id, input=SUM.question, temperature=0, max_output_tokens=300,
        text={"format": {"type": "json_schema", "name": "answer", "schema": ANSWER_SCHEMA, "strict": True}})
    assert held.status == "completed", held.incomplete_details
    jsonschema.validate(json.loads(held.output_text), ANSWER_SCHEMA)


def test_a_long_server_conversation_continues_after_the_app_restarts(start_app, store, greedy) -> None:
    """Quitting the app writes the server conversations' caches (to gpt-oss-serve's folder); the
    next app's server reads the file back for the conversation's next turn and prefills only the
    answer and the new question, answering as it would have without quitting."""
    greedy.set_value(Key.CONTEXT_LENGTH, 2048)
    first = [{"role": "user", "content": " ".join([SUM.question] * 200)}]  # past the 1,024 tokens a file needs
    ask = {"temperature": 0, "max_tokens": 12}

    def serving(app: App) -> tuple[LocalServer, openai.OpenAI, str]:
        server = LocalServer(app.engine, greedy, start_date=lambda: START_DATE)
        server._on_loaded(app.engine.worker.engine.info)
        turn_on(greedy, server)
        return server, openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0), app.engine.worker.engine.info.name

    app = start_app(store)
    server, client, model_id = serving(app)
    answer = client.chat.completions.create(model=model_id, messages=first, **ask)
    server.stop()
    app.close()  # as main() quits: the server stops, then the engine thread writes the caches
    assert len(list(server_cache_dir().glob("*.safetensors"))) == 1

    later = [*first, {"role": "assistant", "content": answer.choices[0].message.content},
             {"role": "user", "content": COLOUR.question}]
    again = start_app(store)
    server, client, model_id = serving(again)
    reopened = client.chat.completions.create(model=model_id, messages=later, **ask)
    reused = reopened.usage.prompt_tokens_details.cached_tokens
    assert reused >= answer.usage.prompt_tokens and reopened.usage.prompt_tokens - reused < 40

    server.stop()
    again.close()

    for path in server_cache_dir().glob("*.safetensors"):
        path.unlink()  # a cold start: nothing of the conversation in memory or on disk
    cold_app = start_app(store)
    server, client, model_id = serving(cold_app)
    cold = client.chat.completions.create(model=model_id, messages=later, **ask)
    server.stop()
    assert cold.usage.prompt_tokens_details.cached_tokens == 0
    assert reopened.choices[0].message.content == cold.choices[0].message.content
