"""Reading the user's documents: which files the library takes, and each one's title and text.

HTML goes through the same rules as a web page (links and images marked); PDF text comes from
pypdf (pure Python, well kept, no system library); Markdown, plain text and source code are read
as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pypdf
from pypdf.errors import PyPdfError

from .page import Page, html_page, text_page

MARKDOWN = {".md", ".markdown", ".mdx", ".rst"}
HTML = {".html", ".htm", ".xhtml"}
PDF = {".pdf"}
PLAIN = {".txt", ".text", ".org", ".tex", ".csv", ".json", ".toml", ".yaml", ".yml", ".ini", ".cfg", ".log"}
CODE = {
    ".py", ".pyi", ".c", ".h", ".cc", ".cpp", ".hpp", ".m", ".mm", ".swift", ".rs", ".go", ".java", ".kt",
    ".js", ".mjs", ".ts", ".tsx", ".jsx", ".rb", ".php", ".sh", ".zsh", ".bash", ".lua", ".r", ".jl",
    ".scala", ".cs", ".sql", ".metal", ".css", ".scss", ".vue", ".zig", ".hs", ".ml", ".ex", ".exs",
}
SUPPORTED = MARKDOWN | HTML | PDF | PLAIN | CODE
MAX_FILE_BYTES = 50 * 1024 * 1024
SKIPPED_FOLDERS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}


class DocumentError(Exception):
    """A file that cannot be read as a document; the text names the file and why."""


@dataclass(frozen=True)
class Document:
    title: str
    text: str  # what search matches: the page text without link markup


def file_url(path: Path) -> str:
    return path.resolve().as_uri()


def is_document(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED and not path.name.startswith(".")


def read_page(path: Path) -> Page:
    """The file as a browser page (HTML with its links marked, other kinds as text)."""
    suffix = path.suffix.lower()
    url = file_url(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DocumentError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB")
        if suffix in HTML:
            return html_page(path.read_text(encoding="utf-8", errors="replace"), url)
        if suffix in PDF:
            return _pdf_page(path, url)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise DocumentError(f"{path} cannot be read: {error.strerror or error}") from error
    title = _markdown_title(text) if suffix in MARKDOWN else None
    return text_page(text, url=url, title=title or path.name)


def read_document(path: Path) -> Document:
    """The title and searchable text (no URL line, links as their text)."""
    page = read_page(path)
    body = page.text.removeprefix(f"\nURL: {page.url}\n")
    return Document(title=page.title, text=_LINK.sub(lambda m: m.group(1), body))


_LINK = re.compile("\u3010\\d+\u2020([^\u2020\u3011]+)(?:\u2020[^\u2020\u3011]+)?\u3011")


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines()[:50]:
        match = re.match(r"#\s+(.+?)\s*#*\s*$", line)
        if match:
            return match.group(1)
    return None


def _pdf_page(path: Path, url: str) -> Page:
    try:
        reader = pypdf.PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or path.name
    except (PyPdfError, ValueError, KeyError) as error:
        raise DocumentError(f"{path} is not a readable PDF: {error}") from error
    page = text_page("\n\n".join(text.strip() for text in pages), url=url, title=str(title))
    page.verbatim = False  # extracted text: its lines are not the file's
    return page
