"""The browser over a real library folder: Markdown, HTML and a PDF made here with fpdf2."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from fpdf import FPDF

from gpt_oss_desktop.mlx_model.tools import Toolbox
from gpt_oss_desktop.mlx_model.tools.browser.page import Page, render_display, wrap_lines

LAUNCH = """# Launch checklist

The rocket launch needs fuel, a crew and clear skies. The countdown starts at ten.
Abort if the wind is above forty knots.
"""
GARDEN = """<html><head><title>Garden notes</title></head><body><h1>Tomatoes</h1>
<p>Water the <a href="https://example.org/tomato">tomatoes</a> every morning; read
<a href="launch.md">the launch list</a> and <a href="#top">the top</a>.</p><img alt="A tomato"></body></html>"""
LONG = "# Almanac\n\n" + "\n".join(f"Day {i}: the tide rose and fell twice, and the gulls were loud." for i in range(300))


def _pdf(path: Path, title: str, lines: list[str]) -> None:
    pdf = FPDF()
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


@pytest.fixture
def library() -> Path:
    """A short path, so the pages' URL line is never wrapped and line numbers stay as written."""
    base = Path(tempfile.mkdtemp(prefix="lib", dir="/tmp"))
    folder = base / "notes"
    folder.mkdir()
    (folder / "launch.md").write_text(LAUNCH)
    (folder / "garden.html").write_text(GARDEN)
    (folder / "almanac.md").write_text(LONG)
    (folder / "deep").mkdir()
    _pdf(folder / "deep" / "engines.pdf", "Engine manual",
         ["The engine burns kerosene and liquid oxygen.", "Its thrust is nine hundred kilonewtons."])
    (folder / "picture.png").write_bytes(b"\x89PNG not a document")
    yield folder
    shutil.rmtree(base)


@pytest.fixture
def toolbox(library: Path, tmp_path: Path):
    with Toolbox(library=[library], python=False, index_path=tmp_path / "index.sqlite3") as box:
        yield box


def text(toolbox: Toolbox, recipient: str, arguments: str) -> str:
    message = toolbox.call(recipient, arguments)
    assert message["role"] == "tool" and message["name"] == recipient and message["recipient"] == "assistant"
    assert message["channel"] == "analysis"
    return message["content"][0]["text"]


def test_search_ranks_by_relevance_and_renders_the_results_page(toolbox: Toolbox) -> None:
    page = text(toolbox, "browser.search", '{"query": "kerosene thrust engine"}')
    lines = page.split("\n")
    assert lines[:6] == ["[0] kerosene thrust engine", "**viewing lines [0 - %d] of %d**" % (len(lines) - 4, len(lines) - 4),
                         "", "L0: ", "L1: URL: ", "L2: # Search Results"]
    assert lines[7].startswith("L4:   * 【0†Engine manual†notes/deep/engines.pdf】 ")
    assert "kerosene" in page
    assert "picture.png" not in page

    page = text(toolbox, "browser.search", '{"query": "wind rocket"}')
    assert page.startswith("[1] wind rocket\n")
    assert "【0†Launch checklist†notes/launch.md】" in page


def test_open_by_link_by_cursor_and_by_path(toolbox: Toolbox, library: Path) -> None:
    text(toolbox, "browser.search", '{"query": "tomatoes morning"}')
    garden = text(toolbox, "browser.open", '{"id": 0}')
    assert garden.split("\n")[:5] == [
        f"[1] Garden notes ({(library / 'garden.html').as_uri()})", "**viewing lines [0 - 7] of 7**", "",
        "L0: ", f"L1: URL: {(library / 'garden.html').as_uri()}",
    ]
    # Links: the web one carries its domain; the local one is the same "domain" as the page;
    # a fragment link is plain text; the image is a placeholder.
    assert "【0†tomatoes†example.org】" in garden and "【1†the launch list】" in garden
    assert "the top" in garden and "[Image 0: A tomato]" in garden
    launch = text(toolbox, "browser.open", '{"id": 1}')
    assert launch.startswith(f"[2] Launch checklist ({(library / 'launch.md').as_uri()})")
    assert "L6: Abort if the wind is above forty knots." in launch
    again = text(toolbox, "browser.open", '{"cursor": 0, "id": 0}')
    assert again.startswith("[3] Garden notes")
    by_path = text(toolbox, "browser.open", '{"id": "notes/deep/engines.pdf"}')
    assert by_path.startswith("[4] Engine manual (")
    assert "The engine burns kerosene and liquid oxygen." in by_path
    absolute = text(toolbox, "browser.open", f'{{"id": "{library / "launch.md"}", "loc": 4, "num_lines": 2}}')
    assert absolute.split("\n")[1:] == [
        "**viewing lines [4 - 5] of 7**", "",
        "L4: The rocket launch needs fuel, a crew and clear skies. The countdown starts at ", "L5: ten.",
    ]


def test_files_outside_the_library_cannot_be_opened(toolbox: Toolbox, library: Path) -> None:
    secret = library.parent / "secret.md"
    secret.write_text("the password")
    for target in (str(secret), secret.as_uri(), "notes/../secret.md"):
        reply = text(toolbox, "browser.open", f'{{"id": "{target}"}}')
        assert reply.startswith(f"Error fetching URL `{target}`: ") and "not a file in the library" in reply
    assert "secret" not in text(toolbox, "browser.search", '{"query": "password"}')


def test_scrolling_a_long_page_and_the_view_window(toolbox: Toolbox, library: Path) -> None:
    first = text(toolbox, "browser.open", '{"id": "notes/almanac.md"}')
    bar = re.match(r"\*\*viewing lines \[0 - (\d+)\] of (\d+)\*\*", first.split("\n")[1])
    end, last = int(bar.group(1)), int(bar.group(2))
    assert last == len(wrap_lines("\nURL: x\n" + LONG)) - 1 and 10 < end < last
    shown = "\n".join(first.split("\n")[3:])
    from gpt_oss_desktop.mlx_model.tokenizer import load_tokenizer

    tokens = len(load_tokenizer(None).encode(shown))
    assert 1024 <= tokens < 1024 + 40  # about 1024 tokens, rounded up to a whole line
    scrolled = text(toolbox, "browser.open", f'{{"loc": {end + 1}}}')
    assert scrolled.startswith(f"[1] Almanac ({(library / 'almanac.md').as_uri()})\n**viewing lines [{end + 1} - ")
    assert scrolled.split("\n")[3].startswith(f"L{end + 1}: Day ")
    assert text(toolbox, "browser.open", '{"loc": 100000}') == (
        f"Invalid location parameter: `100000`. Cannot exceed page maximum of {last}.")
    assert text(toolbox, "browser.open", '{"cursor": 7}') == "Cursor `7` is out of range. Available cursor indices: [0 - 1]."


def test_find_and_opening_a_match(toolbox: Toolbox, library: Path) -> None:
    text(toolbox, "browser.open", '{"id": "notes/launch.md"}')
    found = text(toolbox, "browser.find", '{"pattern": "WIND"}')
    assert found.split("\n") == [
        f"[1] Find results for text: `wind` in `Launch checklist` ({(library / 'launch.md').as_uri()}/find?pattern=wind)",
        "**viewing lines [0 - 2] of 2**", "", "L0: # 【0†match at L6】", "L1: Abort if the wind is above forty knots.",
        "L2: ",
    ]
    assert text(toolbox, "browser.find", '{"pattern": "wind"}') == (
        "Cannot run `find` on search results page or find results page")
    match = text(toolbox, "browser.open", '{"id": 0}')
    assert match.split("\n")[1] == "**viewing lines [2 - 7] of 7**"  # four lines above the match
    assert text(toolbox, "browser.find", '{"pattern": "submarine", "cursor": 0}').endswith(
        "L0: No `find` results for pattern: `submarine`")


def test_citations_resolve_to_the_file_and_its_lines(toolbox: Toolbox, library: Path) -> None:
    text(toolbox, "browser.search", '{"query": "wind"}')
    text(toolbox, "browser.open", '{"id": 0}')
    text(toolbox, "browser.find", '{"pattern": "wind"}')
    assert toolbox.citation(0, 4) is None  # a search page has no source
    cited = toolbox.citation(1, 4, 5)
    assert (cited.url, cited.title, cited.path, cited.file_lines) == (
        (library / "launch.md").as_uri(), "Launch checklist", str(library / "launch.md"), (3, 3))
    assert cited.text.startswith("The rocket launch needs fuel")
    via_find = toolbox.citation(2, 1)
    assert (via_find.path, via_find.start, via_find.file_lines) == (str(library / "launch.md"), 6, (4, 4))
    assert toolbox.citation(9, 1) is None


def test_reindexes_changed_added_and_deleted_files(toolbox: Toolbox, library: Path) -> None:
    assert "Launch checklist" in text(toolbox, "browser.search", '{"query": "countdown"}')
    library_index = toolbox.browser.library
    assert library_index.refresh() == 0  # nothing changed: nothing read again
    (library / "launch.md").write_text("# Launch checklist\n\nNo countdown today; only a picnic.\n")
    os.utime(library / "launch.md", ns=(1, 1))
    (library / "new.txt").write_text("A submarine surfaced near the pier.")
    (library / "garden.html").unlink()
    assert library_index.refresh() == 2
    assert "picnic" in text(toolbox, "browser.search", '{"query": "picnic"}')
    assert "new.txt" in text(toolbox, "browser.search", '{"query": "submarine"}')
    assert "Garden" not in text(toolbox, "browser.search", '{"query": "tomatoes"}')


def test_bad_arguments_are_replies_in_the_reference_words(toolbox: Toolbox) -> None:
    assert text(toolbox, "browser.open", "{}") == "No pages to access!"
    assert text(toolbox, "browser.search", '{"query": ') == '{"error": "Invalid function arguments"}'
    assert text(toolbox, "browser.search", '["a"]') == '{"error": "Invalid function arguments"}'
    assert text(toolbox, "browser.jump", "{}") == '{"error": "Unknown function: jump"}'
    text(toolbox, "browser.search", '{"query": "wind", "topn": 3, "colour": "red"}')  # unknown keys dropped
    assert text(toolbox, "browser.open", '{"cursor": "zero"}') == "`cursor` should be an integer, not `str`"
    assert text(toolbox, "browser.open", '{"id": 42}') == "Invalid link id `42`."
    off = Toolbox(python=False)
    assert "off" in off.call("browser.search", '{"query": "x"}')["content"][0]["text"]


def test_browser_state_survives_a_restart_of_the_toolbox(library: Path, tmp_path: Path) -> None:
    with Toolbox(library=[library], python=False, index_path=tmp_path / "i.sqlite3") as first:
        first.call("browser.open", '{"id": "notes/launch.md"}')
        state = first.browser.state()
    with Toolbox(library=[library], python=False, index_path=tmp_path / "i.sqlite3", browser_state=state) as second:
        assert second.citation(0, 6).file_lines == (4, 4)
        assert second.call("browser.open", '{"loc": 6}')["content"][0]["text"].startswith("[1] Launch checklist")


def test_render_display_matches_the_reference_layout() -> None:
    page = Page(url="https://example.org/a%20b", title="Example", text="one\n\n" + "word " * 30)
    assert render_display(page, 3, 0, -1) == (
        "[3] Example (https://example.org/a b)\n**viewing lines [0 - 3] of 3**\n\n"
        "L0: one\nL1: \nL2: " + "word " * 16 + "\nL3: " + "word " * 14
    )
