"""The model's own tools run inside the server (`gpt-oss-serve --tools browser,python --library
PATH`), over the tiny model trained to search the library, open the hit, run python, call the
client's function and answer with a citation: the Responses API reports the hosted calls as
web_search_call and code_interpreter_call items with the API's events, Chat Completions only the
answer, and the client's own function still comes back to the client."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from support.mcp_notes import record_answer_mcp_config
from support.served import API_KEY, start
from support.tool_model import (
    PYTHON_CODE,
    PYTHON_RESULT,
    QUESTION,
    RECORD_CALL,
    RECORD_RESULT,
    RECORD_TOOL,
    browser_pages,
    final_answer,
    library_folder,
    trained_tool_model,
)

from gpt_oss_desktop.mlx_model.engine import Engine
from gpt_oss_desktop.mlx_model.server import EngineThread, RunningServer
from gpt_oss_desktop.mlx_model.server.cli import parse_arguments, server_tools
from gpt_oss_desktop.mlx_model.server.hosted_tools import ServerTools
from gpt_oss_desktop.mlx_model.tools import Toolbox

HAS_SANDBOX = shutil.which("bwrap") is not None if sys.platform.startswith("linux") else sys.platform == "darwin"
MODEL = "tiny-tools"
RESPONSES_TOOL = {"type": "function", **RECORD_TOOL}
CHAT_TOOL = {"type": "function", "function": RECORD_TOOL}

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not HAS_SANDBOX, reason="the script's python call needs the sandbox (bubblewrap)")]


@pytest.fixture(scope="module")
def runner() -> Iterator[EngineThread]:
    model = trained_tool_model()
    engine_thread = EngineThread(lambda: Engine.load(model, context_length=2048, overflow="stop"))
    yield engine_thread
    engine_thread.close()


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerTools]:
    folder = tmp_path_factory.mktemp("tools")
    hosted = ServerTools(Toolbox(library=[library_folder()], python=True, index_path=folder / "index.sqlite3",
                                 python_folder=folder / "python", python_timeout_s=30.0))
    yield hosted
    hosted.close()


@pytest.fixture(scope="module")
def server(runner: EngineThread, tools: ServerTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start(runner, tmp_path_factory.mktemp("store") / "responses.sqlite3", model_id=MODEL, tools=tools)
    yield running
    running.stop()


@pytest.fixture()
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0)


def test_responses_report_the_hosted_calls_and_hand_the_function_to_the_client(client: openai.OpenAI) -> None:
    searched, opened = browser_pages(library_folder())
    events = list(client.responses.create(model=MODEL, input=QUESTION, tools=[RESPONSES_TOOL],
                                          reasoning={"effort": "low"}, temperature=0, stream=True))
    response = events[-1].response
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [item.type for item in response.output] == ["web_search_call", "web_search_call",
                                                       "code_interpreter_call", "function_call"]
    search, page, python, call = response.output
    assert search.action.type == "search" and search.action.query == "countdown" and search.status == "completed"
    assert page.action.type == "open_page" and page.action.url == opened.split("\n")[0].rsplit("(", 1)[1][:-1]
    assert python.code == PYTHON_CODE and [o.logs for o in python.outputs] == [PYTHON_RESULT]
    assert (call.name, call.arguments) == ("record_answer", RECORD_CALL)
    kinds = [e.type for e in events if e.type.startswith(("response.web_search_call", "response.code_interpreter"))]
    kinds = [kind for i, kind in enumerate(kinds) if i == 0 or kinds[i - 1] != kind]  # one per code delta run
    assert kinds == ["response.web_search_call.in_progress", "response.web_search_call.searching",
                     "response.web_search_call.completed"] * 2 + [
        "response.code_interpreter_call.in_progress", "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done", "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed"]
    for index, item in enumerate(response.output):  # every item added then done, at its own index
        added = [e for e in events if e.type == "response.output_item.added" and e.output_index == index]
        done = [e for e in events if e.type == "response.output_item.done" and e.output_index == index]
        assert len(added) == len(done) == 1 and done[0].item.id == item.id
    assert searched.startswith("[0]")

    answer = client.responses.create(model=MODEL, previous_response_id=response.id, tools=[RESPONSES_TOOL],
                                     reasoning={"effort": "low"}, temperature=0, input=[
                                         {"type": "function_call_output", "call_id": call.call_id,
                                          "output": RECORD_RESULT}])
    assert answer.output_text == final_answer(opened)
    # the turn was rendered again exactly as the model wrote and read it: only the function's
    # result and the new assistant header were prefilled
    assert answer.usage.input_tokens - answer.usage.input_tokens_details.cached_tokens < 30


def test_chat_completions_see_only_the_answer(client: openai.OpenAI) -> None:
    _, opened = browser_pages(library_folder())
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[CHAT_TOOL],
                                           reasoning_effort="low", temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.function.name, call.function.arguments) == ("record_answer", RECORD_CALL)
    assert first.usage.prompt_tokens > first.usage.prompt_tokens_details.cached_tokens > 0  # four rounds summed

    messages += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                 {"role": "tool", "tool_call_id": call.id, "content": RECORD_RESULT}]
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, tools=[CHAT_TOOL],
                                                 reasoning_effort="low", temperature=0, stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == final_answer(opened)


def test_two_clients_asking_alike_run_python_in_kernels_of_their_own(server: RunningServer, tools: ServerTools) -> None:
    assert tools.kernels is not None
    before = tools.kernels.kernels
    for _ in range(2):  # two clients, the same question: two conversations
        other = openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0)
        response = other.responses.create(model=MODEL, input=QUESTION, tools=[RESPONSES_TOOL],
                                          reasoning={"effort": "low"}, temperature=0)
        assert [o.logs for o in response.output[2].outputs] == [PYTHON_RESULT]
    new = [kernel for kernel in tools.kernels.kernels if kernel not in before]
    assert len(new) == 2 and all(kernel.started for kernel in new)
    for kernel in new:  # each ran the model's code once, and nobody else's
        history = tools.toolbox.with_kernel(kernel).run("python", "print(In[1:-1])").text
        assert history == f"[{PYTHON_CODE!r}]\n"


@pytest.mark.parametrize("approve", ["always", "never"])
def test_an_mcp_tool_runs_in_the_server_as_an_mcp_call(runner: EngineThread, tmp_path: Path, approve: str) -> None:
    """`gpt-oss-serve --mcp FILE`: the script's function is an MCP server's tool now, so the server
    runs it (when `--approve always`; refused and reported failed otherwise) and the client gets
    the answer in the same response."""
    config = record_answer_mcp_config(tmp_path / "mcp")
    tools = server_tools(parse_arguments(["--model", MODEL, "--tools", "browser,python", "--library",
                                          str(library_folder()), "--mcp", str(config), "--approve", approve]))
    running = start(runner, tmp_path / "responses.sqlite3", model_id=MODEL, tools=tools)
    try:
        client = openai.OpenAI(base_url=running.url, api_key=API_KEY, max_retries=0)
        events = list(client.responses.create(model=MODEL, input=QUESTION, reasoning={"effort": "low"},
                                              temperature=0, max_output_tokens=200, stream=True))
    finally:
        running.stop()
        tools.close()
    response = events[-1].response
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [item.type for item in response.output][:4] == ["web_search_call", "web_search_call",
                                                           "code_interpreter_call", "mcp_call"]
    mcp = response.output[3]
    assert (mcp.server_label, mcp.name, mcp.arguments) == ("notes", "record_answer", RECORD_CALL)
    kinds = [e.type for e in events if e.type.startswith("response.mcp_call") and e.output_index == 3]
    kinds = [kind for i, kind in enumerate(kinds) if i == 0 or kinds[i - 1] != kind]  # one per delta run
    assert all(e.item_id == mcp.id for e in events if e.type.startswith("response.mcp_call"))
    [done] = [e for e in events if e.type == "response.output_item.done" and e.output_index == 3]
    assert done.item.id == mcp.id
    if approve == "always":
        assert events[-1].type == "response.completed"
        assert kinds == ["response.mcp_call.in_progress", "response.mcp_call_arguments.delta",
                         "response.mcp_call_arguments.done", "response.mcp_call.completed"]
        assert (mcp.output, mcp.error) == (RECORD_RESULT, None)
        assert (tmp_path / "mcp" / "calls.jsonl").read_text() == '{"answer": "ten"}\n'  # the MCP server ran it
        assert response.output[-1].type == "message"
        assert response.output_text == final_answer(browser_pages(library_folder())[1])
    else:
        assert kinds[-1] == "response.mcp_call.failed" and mcp.output is None and "did not allow" in mcp.error
        assert not (tmp_path / "mcp" / "calls.jsonl").exists()


def test_python_is_off_unless_the_operator_lists_it(tmp_path: Path) -> None:
    tools = server_tools(parse_arguments(["--model", "m", "--library", str(library_folder())]))
    try:
        assert tools.toolbox.has_browser and not tools.toolbox.has_python
        assert not tools.runs("python")  # a python call would be the client's, never run here
    finally:
        tools.close()
    assert server_tools(parse_arguments(["--model", "m"])) is None
    with pytest.raises(ValueError, match="--library"):
        server_tools(parse_arguments(["--model", "m", "--tools", "browser"]))
    with pytest.raises(SystemExit):
        parse_arguments(["--model", "m", "--tools", "shell"])
