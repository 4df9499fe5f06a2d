"""Pages as the browser tool shows them to the model, in the layout gpt-oss learned.

One display is `[{cursor}] {title} ({url})`, a `**viewing lines [a - b] of last**` bar, a blank
line and the page's lines numbered `L{i}: `. Lines are the text wrapped to 80 columns without
dropping whitespace, so the numbers the model cites are these wrapped lines. Without an explicit
`num_lines` the window holds about 1024 o200k tokens of numbered text, rounded up to a whole line.
HTML becomes text by the reference's rules: links as `【{id}†{text}(†{domain})】`, images as
`[Image n: alt]`, Markdown-like headings and lists from html2text.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlparse

import html2text
import lxml.etree
import lxml.html

from ...tokenizer import load_tokenizer

VIEW_TOKENS = 1024
MAX_CHARS_PER_TOKEN = 128
"""The longest o200k token, in characters: bounds how much text the window must tokenize."""
WRAP_WIDTH = 80
URL_SHOWN_CHARS = 1024


class BrowserError(Exception):
    """A usage or backend problem; its text is the tool's whole reply (the reference's texts)."""


@dataclass
class Page:
    """A page on the browser's stack. `urls` maps link ids shown on the page to their targets;
    `snippets` (find results only) maps a link id to the line it points at."""

    url: str
    title: str
    text: str
    urls: dict[str, str] = field(default_factory=dict)
    snippets: dict[str, int] | None = None
    verbatim: bool = False  # the text below the URL line is the file's own text, line for line
    origin_lines: list[int] | None = None  # find results: each display line's line on the searched page

    def to_dict(self) -> dict:
        return {"url": self.url, "title": self.title, "text": self.text, "urls": self.urls,
                "snippets": self.snippets, "verbatim": self.verbatim, "origin_lines": self.origin_lines}

    @classmethod
    def from_dict(cls, data: dict) -> "Page":
        return cls(data["url"], data["title"], data["text"], dict(data.get("urls") or {}), data.get("snippets"),
                   bool(data.get("verbatim")), data.get("origin_lines"))


def truncate(text: str, limit: int = URL_SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


LOCAL_DOMAIN = "local"


def domain_of(url: str) -> str:
    """The host a link points at (`en.wikipedia.org`; `local` for the user's files), or ""."""
    if url.startswith("file:"):
        return LOCAL_DOMAIN
    return urlparse(url if "://" in url else "http://" + url).netloc


def wrap_lines(text: str) -> list[str]:
    """The page's display lines: each line wrapped at 80 columns, whitespace and empty lines kept."""
    return list(itertools.chain.from_iterable(
        textwrap.wrap(line, width=WRAP_WIDTH, replace_whitespace=False, drop_whitespace=False) if line else [""]
        for line in text.split("\n")
    ))


def numbered(lines: list[str], offset: int) -> str:
    return "\n".join(f"L{offset + i}: {line}" for i, line in enumerate(lines))


def window_end(lines: list[str], loc: int, num_lines: int) -> int:
    """One past the last line shown from `loc`: `num_lines` of them, or ~VIEW_TOKENS tokens' worth."""
    total = len(lines)
    if num_lines > 0:
        return min(loc + num_lines, total)
    text = numbered(lines[loc:], loc)
    if len(text) <= VIEW_TOKENS:
        return total
    head = text[: (VIEW_TOKENS + 1) * MAX_CHARS_PER_TOKEN]
    tokenizer = load_tokenizer(None)
    tokens = tokenizer.encode(head)
    if len(tokens) <= VIEW_TOKENS:
        return total
    # Characters per token as the reference counts them: each token decoded alone.
    end_char = sum(len(tokenizer.token_bytes(t).decode("utf-8", errors="replace")) for t in tokens[:VIEW_TOKENS])
    return min(loc + text[:end_char].count("\n") + 1, total)


def render_display(page: Page, cursor: int, loc: int, num_lines: int) -> str:
    """The tool's reply showing `page` under `cursor` from line `loc`."""
    lines = wrap_lines(page.text)
    if loc >= len(lines):
        raise BrowserError(f"Invalid location parameter: `{loc}`. Cannot exceed page maximum of {len(lines) - 1}.")
    end = window_end(lines, loc, num_lines)
    shown_url = truncate(unquote(page.url))
    header = page.title + (f" ({shown_url})" if shown_url else "")
    bar = f"**viewing lines [{loc} - {end - 1}] of {len(lines) - 1}**"
    return f"[{cursor}] {header}\n{bar}\n\n{numbered(lines[loc:end], loc)}"


# -- HTML to text ----------------------------------------------------------------------------

_SMP = re.compile("[\U00010000-\U0001FFFF]")
_SPECIALS = {"\u3010": "\u3016", "\u3011": "\u3017", "\u25fc": "\u25fe", "\u200b": ""}
_SPECIALS_RE = re.compile("|".join(map(re.escape, _SPECIALS)))
_SUP = re.compile(r"<sup( [^>]*)?>([\w\-]+)</sup>")
_SUB = re.compile(r"<sub( [^>]*)?>([\w\-]+)</sub>")
_TAGS_BETWEEN_WORDS = re.compile(r"(?<=\w)((<[^>]*>)+)(?=\w)")
_SPACE_AFTER_ANCHOR = re.compile(r"(【@[^】]+】)(\s+)")
_BLANK_LINE = re.compile(r"^\s+$", flags=re.MULTILINE)
_BLANK_RUN = re.compile(r"\n(\s*\n)+")
_IMAGE_ANCHOR = re.compile(r"【@([^】]+)】")


def _merged_text(node) -> str:
    return re.sub(r"\s+", " ", " ".join(node.itertext()).replace("\n", " "))


def _replace_with_text(node, text: str) -> None:
    previous, parent = node.getprevious(), node.getparent()
    tail = node.tail or ""
    if previous is None:
        parent.text = (parent.text or "") + text + tail
    else:
        previous.tail = (previous.tail or "") + text + tail
    parent.remove(node)


def _mark_links(root, page_url: str) -> dict[str, str]:
    page_domain = domain_of(page_url) if page_url else ""
    ids: dict[str, str] = {}
    for anchor in root.findall(".//a[@href]"):
        href = anchor.attrib["href"]
        if href.startswith(("mailto:", "javascript:")):
            continue
        text = _merged_text(anchor).replace("\u2020", "\u2021")
        if not _IMAGE_ANCHOR.sub("", text):
            continue
        if href.startswith("#"):
            _replace_with_text(anchor, text)
            continue
        target = urljoin(page_url, href)
        domain = domain_of(target)
        if not domain:
            continue
        target = target.replace("arxiv.org", "ar5iv.org")
        link_id = next((i for i, u in ids.items() if u == target), None)
        if link_id is None:
            link_id = str(len(ids))
            ids[link_id] = target
        suffix = "" if domain == page_domain else f"\u2020{domain}"
        _replace_with_text(anchor, f"\u3010{link_id}\u2020{text}{suffix}\u3011")
    return ids


def _html2text(html: str) -> str:
    html = _SUP.sub(r"^{\2}", html)
    html = _SUB.sub(r"_{\2}", html)
    html = _TAGS_BETWEEN_WORDS.sub(r" \1", html)
    converter = html2text.HTML2Text()
    converter.ignore_links = converter.ignore_images = converter.ignore_tables = True
    converter.ignore_emphasis = converter.unicode_snob = True
    converter.body_width = 0
    escape, escape_section = html2text.utils.escape_md, html2text.utils.escape_md_section
    # The model reads plain text: Markdown escaping would add backslashes it never saw.
    html2text.utils.escape_md = lambda text: text
    html2text.utils.escape_md_section = lambda text, snob=False: text
    try:
        return converter.handle(html).strip()
    finally:
        html2text.utils.escape_md, html2text.utils.escape_md_section = escape, escape_section


def html_page(html: str, url: str, title: str | None = None) -> Page:
    """An HTML document as the model reads it (the reference's `process_html`, URLs displayed)."""
    html = _SPECIALS_RE.sub(lambda m: _SPECIALS[m.group(0)], _SMP.sub("", html))
    try:
        root = lxml.html.fromstring(html or "<html></html>")
    except (lxml.etree.ParserError, ValueError):
        root = lxml.html.fromstring("<html></html>")
    title_element = root.find(".//title")
    if title:
        final_title = title
    elif title_element is not None:
        final_title = (title_element.text or "").strip()
    else:
        final_title = domain_of(url) if url else ""
    urls = _mark_links(root, url)
    for number, image in enumerate(root.findall(".//img")):
        name = image.get("alt", image.get("title"))
        _replace_with_text(image, f"[Image {number}: {name}]" if name else f"[Image {number}]")
    for node in root.findall(".//math"):
        node.getparent().remove(node)
    text = _html2text(lxml.etree.tostring(root, encoding="UTF-8").decode())
    text = _SPACE_AFTER_ANCHOR.sub(lambda m: m.group(2) + m.group(1), text)
    text = _BLANK_RUN.sub("\n\n", _BLANK_LINE.sub("", text))
    return Page(url=url, title=final_title, text=f"\nURL: {url}\n" + text, urls=urls)


def text_page(text: str, url: str, title: str) -> Page:
    """A plain-text document (Markdown, source code, PDF text) with the same URL line on top."""
    return Page(url=url, title=title, text=f"\nURL: {url}\n" + text, verbatim=True)


@dataclass(frozen=True)
class SearchHit:
    url: str
    title: str
    summary: str
    where: str  # what follows the title in the result's link marker (the reference: the domain)


def search_results_page(query: str, hits: list[SearchHit]) -> Page:
    """The results page the reference builds from `<h1>Search Results</h1><ul><li>…</ul>`."""
    items = [
        f"  * \u3010{i}\u2020{_clean_inline(hit.title)}\u2020{hit.where}\u3011 {_clean_inline(hit.summary)}"
        for i, hit in enumerate(hits)
    ]
    text = "\nURL: \n# Search Results\n\n" + "\n".join(items)
    return Page(url="", title=query, text=text, urls={str(i): hit.url for i, hit in enumerate(hits)})


def _clean_inline(text: str) -> str:
    """Text for one list item: no line breaks, no link brackets of its own."""
    text = _SPECIALS_RE.sub(lambda m: _SPECIALS[m.group(0)], text)
    return re.sub(r"\s+", " ", text.replace("\u2020", "\u2021")).strip()
