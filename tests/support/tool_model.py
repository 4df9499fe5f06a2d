"""A second tiny trained model, one that uses tools: it searches the user's library with
`browser.search`, opens the hit with `browser.open`, runs `python`, calls a function and answers
with a citation, all in one turn. It is trained by harmony_model.py's code on its own script (so
the first model's cache stays valid), and the browser pages in the script are the real Toolbox's
output over a library folder written here, so the model reads at test time what it learned.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from openai_harmony import (
    Author,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    ToolDescription,
)

from gpt_oss_desktop.mlx_model.tools import Toolbox

from .harmony_model import START_DATE, models_cache_root, trained_model, training_sequences

QUESTION = "When does the countdown start? Check my notes."
LAUNCH_NOTE = "# Launch\n\nThe countdown starts at ten.\n"
SEARCH_CALL = '{"query":"countdown"}'
OPEN_CALL = '{"id":0}'
PYTHON_CODE = "print(6 * 7)"
PYTHON_RESULT = "42\n"
RECORD_TOOL = {
    "name": "record_answer",
    "description": "Records the answer.",
    "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
}
RECORD_CALL = '{"answer":"ten"}'
RECORD_RESULT = '{"saved": true}'


def library_folder(root: Path | None = None) -> Path:
    """The library the model was trained to read, at a fixed place (its URL is in the pages)."""
    folder = (root or models_cache_root()) / "tool-library" / "notes"
    folder.mkdir(parents=True, exist_ok=True)
    note = folder / "launch.md"
    if not note.exists() or note.read_text() != LAUNCH_NOTE:
        note.write_text(LAUNCH_NOTE)
    return folder


def browser_pages(folder: Path) -> tuple[str, str]:
    """What the real browser answers to the script's two calls."""
    with tempfile.TemporaryDirectory() as index, Toolbox(library=[folder], python=False,
                                                         index_path=Path(index) / "index.sqlite3") as box:
        return box.call("browser.search", SEARCH_CALL)["content"][0]["text"], box.call(
            "browser.open", OPEN_CALL)["content"][0]["text"]


def final_answer(opened: str) -> str:
    line = next(int(n) for n, text in re.findall(r"^L(\d+): (.*)$", opened, flags=re.MULTILINE) if "countdown" in text)
    return f"The countdown starts at ten \u30101\u2020L{line}\u3011."


def _system() -> Message:
    content = (SystemContent.new().with_reasoning_effort(ReasoningEffort.LOW).with_conversation_start_date(START_DATE)
               .with_browser_tool().with_python_tool())
    return Message.from_role_and_content(Role.SYSTEM, content)


def _developer() -> Message:
    tool = ToolDescription.new(RECORD_TOOL["name"], RECORD_TOOL["description"], parameters=RECORD_TOOL["parameters"])
    return Message.from_role_and_content(Role.DEVELOPER, DeveloperContent.new().with_function_tools([tool]))


def _call(recipient: str, text: str, channel: str = "analysis", content_type: str | None = None) -> Message:
    message = Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel).with_recipient(recipient)
    return message.with_content_type(content_type) if content_type else message


def _result(author: str, text: str, channel: str) -> Message:
    return (Message.from_author_and_content(Author.new(Role.TOOL, author), text)
            .with_recipient("assistant").with_channel(channel))


def script(folder: Path) -> list[tuple[list[Message], list[Message]]]:
    searched, opened = browser_pages(folder)
    steps = [
        (_call("browser.search", SEARCH_CALL), _result("browser.search", searched, "analysis")),
        (_call("browser.open", OPEN_CALL), _result("browser.open", opened, "analysis")),
        (_call("python", PYTHON_CODE), _result("python", PYTHON_RESULT, "analysis")),
        (_call("functions.record_answer", RECORD_CALL, "commentary", "<|constrain|>json"),
         _result("functions.record_answer", RECORD_RESULT, "commentary")),
    ]
    history = [_system(), _developer(), Message.from_role_and_content(Role.USER, QUESTION)]
    turns = []
    for call, result in steps:
        turns.append((list(history), [call]))
        history += [call, result]
    final = Message.from_role_and_content(Role.ASSISTANT, final_answer(opened)).with_channel("final")
    turns.append((history, [final]))
    return turns


def trained_tool_model(cache_root: Path | None = None) -> Path:
    sequences = training_sequences(script(library_folder(cache_root)))
    return trained_model("tools", sequences, (Path(__file__),), cache_root)
