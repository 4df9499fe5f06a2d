"""Settings › Tools and what it keeps: typed tool settings, the MCP servers file in the usual
format, the library's index status, server status and tools from real servers, the per-chat
tool switches in the store, citations as links, and the approval dialog's answers."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest
from PySide6.QtCore import QSettings, Qt

from gpt_oss_desktop.app import migrations
from gpt_oss_desktop.app.approval_dialog import ApprovalDialog
from gpt_oss_desktop.app.chat_tools import ChatTools, ToolSetup
from gpt_oss_desktop.app.citations import link_citations
from gpt_oss_desktop.app.mcp_file import read_servers
from gpt_oss_desktop.app.settings import Key, Settings
from gpt_oss_desktop.app.store import Store
from gpt_oss_desktop.app.tools_settings import ToolsSettings
from gpt_oss_desktop.mlx_model import ApprovalRequest, McpConfigError

SERVER = """
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
server = MCPServer("notes")

@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def look(name: str) -> str:
    \"\"\"Looks a note up.\"\"\"
    return name

@server.tool()
def write(text: str) -> str:
    \"\"\"Writes a note.\"\"\"
    return text

server.run("stdio")
"""


def test_tool_settings_are_typed_and_damage_falls_back(qapp, tmp_path, data_dir) -> None:
    path = str(tmp_path / "settings.ini")
    settings = Settings(QSettings(path, QSettings.Format.IniFormat))
    assert settings.tool_setup() == ToolSetup(python=False, mcp_config=str(data_dir / "mcp.json"))
    settings.set_value(Key.PYTHON, True)
    settings.set_library_folders(["/a", "/b", "/a"])
    settings.set_value(Key.WEB, True)
    settings.set_value(Key.PYTHON_MEMORY_MIB, 512)
    settings.set_mcp_disabled({"notes": ["write"], "other": None, "clean": []})
    settings.sync()
    reread = Settings(QSettings(path, QSettings.Format.IniFormat))  # INI gives strings back
    setup = reread.tool_setup()
    assert (setup.library, setup.web, setup.limits.memory_bytes) == (("/a", "/b"), True, 512 * 2**20)
    assert setup.mcp_disabled == (("notes", ("write",)), ("other", None))
    raw = QSettings(path, QSettings.Format.IniFormat)
    raw.setValue(Key.LIBRARY_FOLDERS.path, "[1, 2")
    raw.setValue(Key.WEB.path, "maybe")
    raw.setValue(Key.APPROVAL.path, "sometimes")
    raw.sync()
    damaged = Settings(QSettings(path, QSettings.Format.IniFormat))
    assert (damaged.library_folders(), damaged.value(Key.WEB), damaged.approval()) == ([], False, "ask")
    # A chat's switches take tools away, never add them.
    assert setup.for_chat(ChatTools(browser=False, mcp=False)) == ToolSetup(
        web=False, python=True, limits=setup.limits, mcp_config=None, mcp_disabled=setup.mcp_disabled)


def test_a_chat_database_of_the_first_schema_is_migrated_with_its_chats(tmp_path) -> None:
    path = tmp_path / "chats.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(db, migrations.MIGRATIONS[:1])
    db.execute("INSERT INTO conversations (title, created_at, updated_at, start_date) VALUES ('old', 1, 1, '2026-01-01')")
    db.close()
    store = Store(path)
    (old,) = store.conversations()
    assert (old.title, old.tools, store.browser_state(old.id)) == ("old", None, None)
    store.set_tools(old.id, ChatTools(python=False, allowed=True).stored())
    store.set_browser_state(old.id, {"pages": [{"url": "file:///x"}]})
    row = store.add_message(old.id, role="tool", content="42\n", attachments={"images": [["image/png", "AAAA"]]})
    assert ChatTools.from_stored(store.conversation(old.id).tools) == ChatTools(python=False, allowed=True)
    assert store.browser_state(old.id) == {"pages": [{"url": "file:///x"}]}
    assert store.message(row.id).attachments == {"images": [["image/png", "AAAA"]]}
    store.update_message(row.id, attachments={"citations": []})
    assert store.message(row.id).attachments == {"citations": []}
    store.close()


def test_citations_become_links_and_unknown_markers_stay() -> None:
    citation = {"marker": "\u30101\u2020L3\u3011", "title": "Launch [notes]", "path": "/tmp/my notes/launch.md",
                "url": "file:///tmp/my%20notes/launch.md", "file_lines": [3, 4]}
    text = "Ten \u30101\u2020L3\u3011 and \u30109\u2020L1\u3011."
    assert link_citations(text, [citation]) == (
        "Ten [\u3010Launch (notes), lines 3\u20134\u3011](file:///tmp/my%20notes/launch.md) and \u30109\u2020L1\u3011.")
    web = {"marker": "\u30102\u2020L0\u3011", "title": "Soil", "path": None, "url": "http://x.org/a b", "file_lines": None}
    assert link_citations("\u30102\u2020L0\u3011", [web]) == "[\u3010Soil\u3011](http://x.org/a%20b)"


def test_the_approval_dialog_answers_and_escape_refuses(qtbot) -> None:
    answers: list[str] = []
    dialog = ApprovalDialog(ApprovalRequest("python", "print(6 * 7)"))
    qtbot.addWidget(dialog)
    dialog.answered.connect(answers.append)
    dialog.open()
    assert dialog.code.toPlainText() == "print(6 * 7)" and dialog.choices["deny"].isDefault()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert answers == ["deny"] and not dialog.isVisible()
    function = ApprovalDialog(ApprovalRequest("functions.write", '{"text":"x"}'))
    qtbot.addWidget(function)
    function.answered.connect(answers.append)
    assert function.windowTitle() == "Call write?" and function.code.toPlainText() == '{\n  "text": "x"\n}'
    function.choices["chat"].click()
    assert answers == ["deny", "chat"]


@pytest.fixture
def page(qtbot, settings, data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    widget = ToolsSettings(settings)
    qtbot.addWidget(widget)
    return widget


def test_library_folders_are_indexed_with_their_status(page, qtbot, settings, tmp_path) -> None:
    library = tmp_path / "notes"
    library.mkdir()
    (library / "a.md").write_text("# A\n\nalpha\n")
    (library / "b.txt").write_text("beta\n")
    page.add_library_folder(str(library))
    qtbot.waitUntil(lambda: "documents indexed" in page.index_status.text(), timeout=20_000)
    assert page.index_status.text() == "2 documents indexed (2 read now)."
    page.reindex()
    qtbot.waitUntil(lambda: "(0 read now)" in page.index_status.text(), timeout=20_000)
    page.web.setChecked(True)
    page.save()
    assert settings.library_folders() == [str(library)] and settings.value(Key.WEB) is True


@pytest.mark.slow
def test_mcp_servers_are_added_checked_and_their_tools_switched_off(page, qtbot, settings, data_dir, tmp_path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    page.set_server("notes", {"command": sys.executable, "args": [str(script)]})
    page.set_server("gone", {"command": str(tmp_path / "missing-binary")})
    saved = json.loads((data_dir / "mcp.json").read_text())
    assert saved == {"mcpServers": {"notes": {"command": sys.executable, "args": [str(script)]},
                                    "gone": {"command": str(tmp_path / "missing-binary")}}}
    qtbot.waitUntil(lambda: page.mcp_status.text().startswith("Not running"), timeout=60_000)
    assert page.mcp_status.text() == "Not running: gone."
    notes = page.servers.topLevelItem(0)
    assert (notes.text(0), notes.text(1)) == ("notes", "running")
    assert [(notes.child(i).text(0), notes.child(i).text(1)) for i in range(notes.childCount())] == [
        ("look", "read-only"), ("write", "asks first")]
    assert page.servers.topLevelItem(1).text(1).startswith("failed: ")
    notes.child(1).setCheckState(0, Qt.CheckState.Unchecked)
    page.servers.topLevelItem(1).setCheckState(0, Qt.CheckState.Unchecked)
    page.save()
    assert settings.mcp_disabled() == {"gone": None, "notes": ["write"]}
    # Another app's file is imported into ours; a broken one is refused with its reason.
    other = tmp_path / "claude_desktop_config.json"
    other.write_text(json.dumps({"mcpServers": {"remote": {"url": "http://127.0.0.1:9/mcp"}}}))
    page.import_servers(other)
    assert set(read_servers(data_dir / "mcp.json")) == {"notes", "gone", "remote"}
    other.write_text('{"mcpServers": {"x": {}}}')
    with pytest.raises(McpConfigError, match="mcpServers.x needs a `command`"):
        read_servers(other)


def test_a_reply_shows_the_images_its_tools_drew(qtbot, store) -> None:
    """Python's display data, stored with the tool's message, is shown under the answer."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QColor, QImage

    from gpt_oss_desktop.app.chat_view import MessageBubble
    from gpt_oss_desktop.app.transcript import group_turns

    picture = QImage(800, 400, QImage.Format.Format_RGB32)
    picture.fill(QColor("red"))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    picture.save(buffer, "PNG")
    png = bytes(data.toBase64()).decode("ascii")
    chat = store.create_conversation()
    store.add_message(chat.id, role="user", content="Plot it")
    store.add_message(chat.id, role="assistant", recipient="python", channel="analysis", content="plot()")
    store.add_message(chat.id, role="tool", author_name="python", channel="analysis", content="[image]",
                      attachments={"images": [["image/png", png], ["image/png", "not base64 of an image"]]})
    store.add_message(chat.id, role="assistant", content="Here it is.")
    bubble = MessageBubble("assistant")
    qtbot.addWidget(bubble)
    bubble.show_turn(group_turns(store.messages(chat.id))[1])
    shown = [bubble.images.itemAt(i).widget() for i in range(bubble.images.count())]
    assert len(shown) == 1 and shown[0].pixmap().width() == 560  # scaled to the column, the broken one left out
    assert bubble.view.toPlainText().strip() == "Here it is."
