"""The local library: folders of the user's documents, searchable offline.

An SQLite FTS5 index (BM25 ranking, Porter stemming) lives in the data folder and is brought up
to date before every search by comparing each file's size and modification time with what was
indexed, so only new or changed files are read again and deleted ones drop out. Opening is
limited to files inside the library's folders: the model cannot read anything else by naming it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from .documents import SKIPPED_FOLDERS, DocumentError, is_document, read_document, read_page
from .page import BrowserError, Page, SearchHit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(path UNINDEXED, title, body, tokenize = 'porter unicode61');
"""
_TITLE_WEIGHT, _BODY_WEIGHT = 5.0, 1.0
_SNIPPET_TOKENS = 24


class Library:
    """Folders of documents and their full-text index (`index_path`, an SQLite file)."""

    def __init__(self, folders: Sequence[str | Path], index_path: Path) -> None:
        self.folders = [Path(folder).expanduser().resolve() for folder in folders]
        for folder in self.folders:
            if not folder.is_dir():
                raise FileNotFoundError(f"library folder {folder} does not exist")
        index_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(index_path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.skipped: dict[Path, str] = {}  # files that could not be read, and why

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- indexing ------------------------------------------------------------------------------

    def _files(self) -> Iterator[Path]:
        for folder in self.folders:
            for root, dirs, names in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and not d.startswith("."))
                for name in sorted(names):
                    path = Path(root) / name
                    if is_document(path):
                        yield path

    def refresh(self) -> int:
        """Index new and changed files, forget deleted ones; returns how many were (re)read."""
        with self._lock:
            known = {
                row[0]: (row[1], row[2]) for row in self._db.execute("SELECT path, mtime_ns, size FROM files")
                if self._inside(Path(row[0]))
            }
            seen: set[str] = set()
            changed = 0
            for path in self._files():
                key = str(path)
                seen.add(key)
                try:
                    stat = path.stat()
                except OSError:
                    continue
                if known.get(key) == (stat.st_mtime_ns, stat.st_size):
                    continue
                changed += 1
                self._db.execute("DELETE FROM docs WHERE path = ?", (key,))
                try:
                    document = read_document(path)
                except DocumentError as error:
                    self.skipped[path] = str(error)
                else:
                    self.skipped.pop(path, None)
                    self._db.execute("INSERT INTO docs (path, title, body) VALUES (?, ?, ?)",
                                     (key, document.title, document.text))
                self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (key, stat.st_mtime_ns, stat.st_size))
            for gone in set(known) - seen:
                self._db.execute("DELETE FROM docs WHERE path = ?", (gone,))
                self._db.execute("DELETE FROM files WHERE path = ?", (gone,))
            self._db.commit()
            return changed

    def indexed(self) -> int:
        """How many documents of the library's folders the index holds."""
        with self._lock:
            return sum(self._inside(Path(row[0])) for row in self._db.execute("SELECT path FROM docs"))

    # -- search and open -----------------------------------------------------------------------

    def search(self, query: str, topn: int) -> list[SearchHit]:
        """The best `topn` documents for `query` by BM25 (any of its words; titles count more)."""
        self.refresh()
        words = re.findall(r"\w+", query)
        if not words:
            return []
        match = " OR ".join('"' + word.replace('"', "") + '"' for word in words)
        with self._lock:
            rows = self._db.execute(
                "SELECT path, title, snippet(docs, 2, '', '', '…', ?) FROM docs WHERE docs MATCH ? "
                "ORDER BY bm25(docs, 0.0, ?, ?) LIMIT ?",
                (_SNIPPET_TOKENS, match, _TITLE_WEIGHT, _BODY_WEIGHT, topn * 4 + 10),
            ).fetchall()
        hits = []
        for path, title, snippet in rows:
            where = self._where(Path(path))
            if where is not None:
                hits.append(SearchHit(url=Path(path).as_uri(), title=title, summary=snippet, where=where))
        return hits[:topn]

    def resolve(self, target: str) -> Path | None:
        """The library file a URL or path names (`file://…`, absolute, or relative to a folder)."""
        if target.startswith("file:"):
            candidates = [Path(unquote(urlparse(target).path))]
        elif os.path.isabs(target):
            candidates = [Path(target)]
        else:
            candidates = [folder / target for folder in self.folders]
            candidates += [folder.parent / target for folder in self.folders]
        for candidate in candidates:
            path = candidate.resolve()
            if self._inside(path) and path.is_file():
                return path
        return None

    def handles(self, target: str) -> bool:
        return self.resolve(target) is not None

    def fetch(self, target: str) -> Page:
        path = self.resolve(target)
        if path is None:
            raise BrowserError(f"`{target}` is not a file in the library")
        try:
            return read_page(path)
        except DocumentError as error:
            raise BrowserError(str(error)) from error

    def _inside(self, path: Path) -> bool:
        return any(path.is_relative_to(folder) for folder in self.folders)

    def _where(self, path: Path) -> str | None:
        """`folder-name/relative/path`, shown after a result's title; None outside the library."""
        for folder in self.folders:
            if path.is_relative_to(folder):
                return f"{folder.name}/{path.relative_to(folder).as_posix()}"
        return None
