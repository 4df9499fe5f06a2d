"""The web, for when the user turns it on (off by default): pages fetched with httpx2 (the HTTP
client the `mcp` SDK and huggingface_hub already bring in), turned into text by the same rules as
local HTML, and searched through a pluggable `SearchProvider`."""

from __future__ import annotations

from typing import Protocol

import httpx2

from .page import BrowserError, Page, SearchHit, domain_of, html_page, text_page, truncate

USER_AGENT = "gpt-oss-desktop (browser tool)"
MAX_PAGE_BYTES = 10 * 1024 * 1024


class SearchProvider(Protocol):
    """Turns a query into ranked hits; raises BrowserError with a readable reason on failure."""

    def search(self, query: str, topn: int) -> list[SearchHit]: ...


class SearxngSearch:
    """A SearXNG instance's JSON API (`{base_url}/search?q=…&format=json`), e.g. one the user
    runs on their own machine."""

    def __init__(self, base_url: str, client: httpx2.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx2.Client(timeout=20.0, headers={"user-agent": USER_AGENT})

    def search(self, query: str, topn: int) -> list[SearchHit]:
        response = self._client.get(f"{self.base_url}/search", params={"q": query, "format": "json"})
        if response.status_code != 200:
            raise BrowserError(f"SearxngSearch error {response.status_code}: {truncate(response.text)}")
        results = response.json().get("results", [])
        return [
            SearchHit(url=r["url"], title=r.get("title") or r["url"], summary=r.get("content") or "",
                      where=domain_of(r["url"]))
            for r in results[:topn] if isinstance(r, dict) and r.get("url")
        ]


class Web:
    def __init__(self, search: SearchProvider | None = None, timeout_s: float = 30.0) -> None:
        self.search_provider = search
        self._client = httpx2.Client(timeout=timeout_s, follow_redirects=True, headers={"user-agent": USER_AGENT})

    def close(self) -> None:
        self._client.close()

    def search(self, query: str, topn: int) -> list[SearchHit]:
        if self.search_provider is None:
            raise BrowserError("no web search service is set up (Settings › Tools › Browser)")
        return self.search_provider.search(query, topn)

    def fetch(self, url: str) -> Page:
        if not url.startswith(("http://", "https://")):
            raise BrowserError(f"`{url}` is not a web address (http or https)")
        response = self._client.get(url)
        if response.status_code != 200:
            raise BrowserError(f"Web error {response.status_code}: {truncate(response.text)}")
        if len(response.content) > MAX_PAGE_BYTES:
            raise BrowserError(f"the page is larger than {MAX_PAGE_BYTES // 2**20} MiB")
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        final_url = str(response.url)
        if kind in ("text/html", "application/xhtml+xml", ""):
            return html_page(response.text, final_url)
        if kind.startswith("text/") or kind in ("application/json", "application/xml"):
            return text_page(response.text, final_url, title=domain_of(final_url))
        raise BrowserError(f"No HTML returned for {final_url} (content type {kind})")
