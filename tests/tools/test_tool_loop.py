"""The engine's tool loop end to end, on a tiny model trained in the session to search the
library, open the hit, run python, call a function and answer with a citation."""

from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
from support.harmony_model import START_DATE
from support.tool_model import (
    PYTHON_RESULT,
    QUESTION,
    RECORD_RESULT,
    RECORD_TOOL,
    browser_pages,
    final_answer,
    library_folder,
    trained_tool_model,
)

from gpt_oss_desktop.mlx_model import (
    ApprovalRequest,
    Chat,
    Done,
    Engine,
    FunctionTool,
    SamplingSettings,
    Stats,
    Toolbox,
    ToolResult,
    declare_tools,
    reply_with_tools,
    text_of,
)

HAS_SANDBOX = shutil.which("bwrap") is not None if sys.platform.startswith("linux") else sys.platform == "darwin"
GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=80)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(trained_tool_model(), context_length=2048)


def _toolbox(tmp_path, recorded: list) -> Toolbox:
    box = Toolbox(library=[library_folder()], python=True, index_path=tmp_path / "index.sqlite3",
                  python_folder=tmp_path / "chat", python_timeout_s=30.0)
    box.add_function(FunctionTool(RECORD_TOOL["name"], RECORD_TOOL["description"], RECORD_TOOL["parameters"],
                                  lambda arguments: recorded.append(arguments) or json.loads(RECORD_RESULT),
                                  read_only=False))
    return box


def _chat(toolbox: Toolbox) -> Chat:
    chat = Chat(reasoning_level="low", start_date=START_DATE)
    declare_tools(chat, toolbox)
    chat.add_user(QUESTION)
    return chat


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SANDBOX, reason="the script's python call needs the sandbox (bubblewrap on Linux)")
def test_a_reply_searches_opens_runs_python_calls_a_function_and_cites(engine: Engine, tmp_path) -> None:
    recorded: list = []
    asked: list[ApprovalRequest] = []
    with _toolbox(tmp_path, recorded) as toolbox:
        chat = _chat(toolbox)
        assert chat.builtin_tools == ("browser", "python") and [t["name"] for t in chat.tools] == ["record_answer"]
        events = list(reply_with_tools(engine, chat, toolbox, GREEDY, approve=lambda r: asked.append(r) or True))
        results = [e for e in events if isinstance(e, ToolResult)]
        searched, opened = browser_pages(library_folder())
        assert [(r.recipient, r.text, r.ok) for r in results] == [
            ("browser.search", searched, True), ("browser.open", opened, True), ("python", PYTHON_RESULT, True),
            ("functions.record_answer", RECORD_RESULT, True),
        ]
        assert [(a.recipient, a.arguments) for a in asked] == [("python", "print(6 * 7)"),
                                                               ("functions.record_answer", '{"answer":"ten"}')]
        assert recorded == [{"answer": "ten"}]
        dones = [e for e in events if isinstance(e, Done)]
        assert [d.reason for d in dones] == ["call"] * 4 + ["return"]
        answer = chat.messages[-1]
        assert answer["channel"] == "final" and text_of(answer) == final_answer(opened)
        # Every round after the first continued the cache: only the tool message and the new
        # assistant header were read anew.
        stats = [e for e in events if isinstance(e, Stats)]
        for before, after in zip(stats, stats[1:]):
            assert after.cached_tokens == before.prompt_tokens + before.new_tokens
        # The citation in the answer leads to the file and its line.
        cited = toolbox.citation(1, int(final_answer(opened).split("L")[-1].rstrip("】.")))
        assert cited.path == str(library_folder() / "launch.md") and cited.file_lines == (3, 3)
        roles = [(m["role"], m.get("name"), m.get("recipient")) for m in chat.messages]
        assert roles[-3:] == [("assistant", None, "functions.record_answer"),
                              ("tool", "functions.record_answer", "assistant"), ("assistant", None, None)]


@pytest.mark.slow
def test_a_refused_call_is_answered_and_the_loop_goes_on(engine: Engine, tmp_path) -> None:
    with _toolbox(tmp_path, []) as toolbox:
        chat = _chat(toolbox)
        events = list(reply_with_tools(engine, chat, toolbox, GREEDY, approve=None, max_rounds=8))
        results = [e for e in events if isinstance(e, ToolResult)]
        assert results[2].recipient == "python" and not results[2].ok
        assert results[2].text == "[ERROR] The user did not allow this call; it was not run."
        assert results[2].message["channel"] == "analysis" and not (tmp_path / "chat").exists()
        assert isinstance(events[-1], Done)


@pytest.mark.slow
def test_rounds_are_capped(engine: Engine, tmp_path) -> None:
    with _toolbox(tmp_path, []) as toolbox:
        chat = _chat(toolbox)
        events = list(reply_with_tools(engine, chat, toolbox, GREEDY, max_rounds=1))
        results = [e for e in events if isinstance(e, ToolResult)]
        assert [r.recipient for r in results] == ["browser.search", "browser.open"]
        assert results[1].text.startswith("[ERROR] This reply has already made 1 tool calls, the most allowed")
        assert events[-1] == [e for e in events if isinstance(e, Done)][-1]


@pytest.mark.slow
def test_the_terminal_chat_runs_tools_and_shows_their_results(tmp_path, monkeypatch) -> None:
    """`gpt-oss-chat --tools`: without the script's function the model goes off its script, which
    shows a broken call answered with an error reply rather than a crash."""
    import io

    from gpt_oss_desktop.mlx_model.cli import main

    monkeypatch.setenv("GPT_OSS_DESKTOP_DATA_DIR", str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    code = main(["--model", str(trained_tool_model()), "--tools", "browser,python", "--library", str(library_folder()),
                 "--approve", "never", "--prompt", QUESTION, "--start-date", START_DATE, "--reasoning", "low",
                 "--temperature", "0", "--max-tokens", "60"], io.StringIO(), out, err)
    assert code == 0, err.getvalue()
    assert "→ browser.search(" in out.getvalue() and "← browser.search (" in out.getvalue()
    with pytest.raises(SystemExit):
        main(["--model", "x", "--tools", "shell"], io.StringIO(), io.StringIO(), io.StringIO())


def test_function_declaration_files_are_checked(tmp_path) -> None:
    from gpt_oss_desktop.mlx_model.cli import load_functions

    path = tmp_path / "functions.json"
    for content, expected in (("{", "not JSON"), ('{"name": "x"}', "needs a JSON list"),
                              ('[{"description": "no name"}]', "[0] needs a `name`"),
                              ('[{"name": "x", "parameters": []}]', "[0].parameters must be a JSON Schema object")):
        path.write_text(content)
        with pytest.raises(ValueError, match=re.escape(expected)) as raised:
            load_functions(path)
        assert str(path) in str(raised.value)
    path.write_text(json.dumps([RECORD_TOOL, {"type": "function", "function": {"name": "ping"}}]))
    assert load_functions(path) == [RECORD_TOOL, {"name": "ping", "description": "", "parameters": None}]
