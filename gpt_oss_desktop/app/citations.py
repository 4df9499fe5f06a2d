"""Citations in answers as links: the browser's `【cursor†Lstart-Lend】` markers, resolved when the
reply ended (chat_tools.cited_sources) and stored with the answer, become Markdown links to the
cited file (opened in the user's app for it) or web page, named by the source's title and lines."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QUrl

from .chat_tools import CITATION


def citation_label(citation: dict[str, Any]) -> str:
    lines = citation.get("file_lines")
    where = (f"line {lines[0]}" if lines[0] == lines[1] else f"lines {lines[0]}–{lines[1]}") if lines else ""
    return ", ".join(part for part in (citation.get("title") or citation.get("url") or "source", where) if part)


def citation_href(citation: dict[str, Any]) -> str:
    url = QUrl.fromLocalFile(citation["path"]) if citation.get("path") else QUrl(citation.get("url") or "")
    return url.toString(QUrl.ComponentFormattingOption.FullyEncoded)


def link_citations(text: str, citations: list[dict[str, Any]]) -> str:
    """`text` with each resolved marker replaced by a link; unresolved markers stay as written."""
    if not citations:
        return text
    known = {citation["marker"]: citation for citation in citations}

    def link(match) -> str:
        citation = known.get(match.group(0))
        if citation is None:
            return match.group(0)
        label = citation_label(citation).replace("[", "(").replace("]", ")")
        return f"[\u3010{label}\u3011]({citation_href(citation)})"

    return CITATION.sub(link, text)
