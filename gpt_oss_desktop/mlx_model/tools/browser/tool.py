"""The `browser` tool: `search`, `open` and `find` with the reference's semantics and texts.

Every successful call pushes a page, so the cursor shown as `[n]` grows by one per call. Pages are
kept by cursor (the reference keys them by URL, so a second search page overwrote the first and
old cursors showed the wrong results); a link opened again is served from the cache, a URL or
path given as `id` is fetched afresh. Errors are replies, in the reference's exact words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlparse

from .library import Library
from .page import BrowserError, Page, render_display, search_results_page, truncate, wrap_lines
from .web import Web

MAX_SEARCH_RESULTS = 20
FIND_MAX_MATCHES = 50
FIND_SHOWN_LINES = 4
VIEW_SOURCE = "view-source:"
_LINK = re.compile("\u3010\\d+\u2020(?P<content>[^\u2020\u3011]+)(?:\u2020[^\u2020\u3011]+)?\u3011")
_PARTIAL_FIRST = re.compile("^[^\u3010\u3011]*\u3011")
_PARTIAL_LAST = re.compile("\u3010\\d*(?:\u2020(?P<content>[^\u2020\u3011]*)(?:\u2020[^\u2020\u3011]*)?)?$")
FUNCTIONS = ("search", "open", "find")


@dataclass(frozen=True)
class Citation:
    """Where `【cursor†Lstart-Lend】` points: the page's URL and title, the cited display lines
    and their text; for a text file also its path and the file's own (1-based) line range."""

    cursor: int
    url: str
    title: str
    start: int
    end: int
    text: str
    path: str | None = None
    file_lines: tuple[int, int] | None = None


def _strip_links(text: str) -> str:
    text = _PARTIAL_FIRST.sub("", text)
    text = _PARTIAL_LAST.sub(lambda m: m.group("content") or "", text)
    return _LINK.sub(lambda m: m.group("content"), text)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise BrowserError(f"`{name}` should be an integer, not `{type(value).__name__}`")
    return int(value)


class Browser:
    """One chat's browser: its page stack over a library and, when allowed, the web."""

    def __init__(self, library: Library | None = None, web: Web | None = None, state: dict | None = None) -> None:
        self.library = library
        self.web = web
        self.pages: list[Page] = [Page.from_dict(p) for p in (state or {}).get("pages", [])]
        self._cache: dict[str, Page] = {}

    def state(self) -> dict:
        """The page stack as JSON-able data, to keep with the chat: its citations refer to it."""
        return {"pages": [page.to_dict() for page in self.pages]}

    def call(self, function: str, arguments: dict[str, Any]) -> str:
        """Run `browser.{function}`; the reply text, which says what went wrong if anything did."""
        try:
            if function == "search":
                return self.search(str(arguments.get("query", "")))
            if function == "open":
                return self.open(arguments.get("id", -1), arguments.get("cursor", -1), arguments.get("loc", -1),
                                 arguments.get("num_lines", -1), bool(arguments.get("view_source", False)))
            if function == "find":
                return self.find(str(arguments.get("pattern", "")), arguments.get("cursor", -1))
        except BrowserError as error:
            return str(error)
        raise ValueError(f"Unknown function: {function}")

    # -- the three functions -------------------------------------------------------------------

    def search(self, query: str) -> str:
        try:
            hits = self._backend_search(query)
        except Exception as error:  # a backend's failure is the model's to read, never a crash
            raise BrowserError(f"Error during search for `{query}`: {truncate(str(error))}") from error
        return self._push_and_show(search_results_page(query, hits), 0, -1)

    def open(self, id: Any = -1, cursor: Any = -1, loc: Any = -1, num_lines: Any = -1, view_source: bool = False) -> str:
        loc, num_lines = _integer("loc", loc), _integer("num_lines", num_lines)
        snippet_line = None
        if isinstance(id, str):
            page = self._fetch(VIEW_SOURCE + id if view_source else id, fresh=True)
        else:
            link_id = _integer("id", id)
            current = self._page(cursor)
            if link_id >= 0:
                url = current.urls.get(str(link_id))
                if url is None:
                    raise BrowserError(f"Invalid link id `{link_id}`.")
                snippet_line = (current.snippets or {}).get(str(link_id))
                page = self._fetch(VIEW_SOURCE + url if view_source else url, fresh=False)
            elif view_source:
                page = self._fetch(VIEW_SOURCE + current.url, fresh=False)
            else:
                page = current
        if loc < 0:
            loc = snippet_line - 4 if snippet_line is not None and snippet_line > 4 else (snippet_line or 0)
        return self._push_and_show(page, loc, num_lines)

    def find(self, pattern: str, cursor: Any = -1) -> str:
        page = self._page(cursor)
        if page.snippets is not None:
            raise BrowserError("Cannot run `find` on search results page or find results page")
        pattern = pattern.lower()
        lines = _strip_links("\n".join(wrap_lines(page.text))).split("\n")
        chunks: list[str] = []
        snippets: dict[str, int] = {}
        origin: list[int] = []
        index = 0
        while index < len(lines) and len(chunks) < FIND_MAX_MATCHES:
            if pattern not in lines[index].lower():
                index += 1
                continue
            shown = lines[index : index + FIND_SHOWN_LINES]
            number = len(chunks)
            if chunks:
                origin.append(-1)
            chunks.append(f"# \u3010{number}\u2020match at L{index}\u3011\n" + "\n".join(shown))
            origin += [-1] + [index + k for k in range(len(shown))]
            snippets[str(number)] = index
            index += FIND_SHOWN_LINES
        text = "\n\n".join(chunks) if chunks else f"No `find` results for pattern: `{pattern}`"
        results = Page(
            url=f"{page.url}/find?pattern={quote(pattern)}",
            title=f"Find results for text: `{pattern}` in `{page.title}`",
            text=text, urls={key: page.url for key in snippets}, snippets=snippets,
            origin_lines=origin if chunks else None,
        )
        return self._push_and_show(results, 0, -1)

    # -- citations -----------------------------------------------------------------------------

    def citation(self, cursor: int, start: int, end: int | None = None) -> Citation | None:
        """What a citation the model wrote refers to, or None (unknown cursor, search page)."""
        if not 0 <= cursor < len(self.pages) or not self.pages[cursor].url:
            return None
        page = self.pages[cursor]
        end = start if end is None else end
        lines = wrap_lines(page.text)
        start, end = max(0, min(start, end)), min(max(start, end), len(lines) - 1)
        url, text = page.url, "\n".join(lines[start : end + 1])
        if page.origin_lines is not None:  # a find page: point into the page it searched
            source_url, _, _ = page.url.rpartition("/find?")
            source = next((p for p in self.pages if p.url == source_url), None)
            mapped = [page.origin_lines[i] for i in range(start, end + 1) if i < len(page.origin_lines)
                      and page.origin_lines[i] >= 0]
            if source is None or not mapped:
                return Citation(cursor, url, page.title, start, end, text)
            page, url, start, end = source, source_url, min(mapped), max(mapped)
        path = unquote(urlparse(url).path) if url.startswith("file:") else None
        file_lines = _file_lines(page, start, end) if path and page.verbatim else None
        return Citation(cursor, url, page.title, start, end, text, path, file_lines)

    # -- internals -----------------------------------------------------------------------------

    def _page(self, cursor: Any) -> Page:
        if not self.pages:
            raise BrowserError("No pages to access!")
        if not isinstance(cursor, (int, float)) or isinstance(cursor, bool) or cursor != int(cursor):
            raise BrowserError(f"`cursor` should be an integer, not `{type(cursor).__name__}`")
        cursor = int(cursor)
        if cursor == -1:
            return self.pages[-1]
        try:
            return self.pages[cursor]
        except IndexError:
            raise BrowserError(
                f"Cursor `{cursor}` is out of range. Available cursor indices: [0 - {len(self.pages) - 1}]."
            ) from None

    def _push_and_show(self, page: Page, loc: int, num_lines: int) -> str:
        self.pages.append(page)
        try:
            return render_display(page, len(self.pages) - 1, loc, num_lines)
        except BrowserError:
            self.pages.pop()
            raise

    def _backend_search(self, query: str):
        if self.library is not None:
            return self.library.search(query, MAX_SEARCH_RESULTS)
        if self.web is not None:
            return self.web.search(query, MAX_SEARCH_RESULTS)
        raise BrowserError("no library folder is set up and web browsing is off")

    def _fetch(self, target: str, fresh: bool) -> Page:
        if not fresh and target in self._cache:
            return self._cache[target]
        source = target.removeprefix(VIEW_SOURCE)
        try:
            page = self._backend_fetch(source)
        except Exception as error:  # as for search: the reply says what went wrong
            raise BrowserError(f"Error fetching URL `{truncate(target)}`: {truncate(str(error))}") from error
        if target.startswith(VIEW_SOURCE):
            page = Page(url=target, title=page.title, text=page.text, urls={})
        self._cache[target] = page
        return page

    def _backend_fetch(self, target: str) -> Page:
        if target.startswith(("http://", "https://")):
            if self.web is None:
                raise BrowserError("web browsing is off (Settings › Tools › Browser)")
            return self.web.fetch(target)
        if self.library is None:
            raise BrowserError("no library folder is set up")
        return self.library.fetch(target)


def _file_lines(page: Page, start: int, end: int) -> tuple[int, int] | None:
    """A text page's display lines [start, end] as the file's 1-based lines (under the two
    lines of the URL header), or None when they are all in the header."""
    display_to_line: list[int] = []
    for number, line in enumerate(page.text.split("\n")):
        display_to_line += [number] * len(wrap_lines(line))
    first, last = display_to_line[start] - 1, display_to_line[end] - 1
    if last < 1:
        return None
    return max(first, 1), last
