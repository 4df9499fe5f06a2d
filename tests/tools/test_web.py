"""The browser's web backend on real HTTP: pages served by a server on 127.0.0.1 in the test,
fetched by the real client, their text extracted, links followed, search through a SearXNG-style
JSON API; and off by default."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from gpt_oss_desktop.mlx_model import SearxngSearch, Toolbox

ARTICLE = """<html><head><title>Tomato care</title></head><body>
<h1>Tomato care</h1>
<p>Water the tomatoes every morning; read the <a href="/soil.html">soil guide</a> first.</p>
<script>var hidden = "not page text";</script>
</body></html>"""
SOIL = "<html><head><title>Soil guide</title></head><body><p>Loam drains well and keeps nutrients.</p></body></html>"


class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 — the http.server name
        url = urlparse(self.path)
        if url.path == "/search":
            query = parse_qs(url.query)["q"][0]
            body = json.dumps({"results": [
                {"url": f"http://{self.headers['host']}/article.html", "title": "Tomato care",
                 "content": f"How to care for tomatoes ({query})."}]}).encode()
            kind = "application/json"
        elif url.path in ("/article.html", "/soil.html"):
            body, kind = (ARTICLE if url.path == "/article.html" else SOIL).encode(), "text/html; charset=utf-8"
        else:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"no such page")
            return
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _text(box: Toolbox, recipient: str, arguments: dict) -> str:
    return box.call(recipient, json.dumps(arguments))["content"][0]["text"]


def test_pages_are_fetched_rendered_and_their_links_followed(site: str, tmp_path) -> None:
    with Toolbox(web=True, python=False, index_path=tmp_path / "index.sqlite3") as box:
        page = _text(box, "browser.open", {"id": f"{site}/article.html"})
        assert page.startswith(f"[0] Tomato care ({site}/article.html)\n**viewing lines [0 - ")
        assert "Water the tomatoes every morning" in page and "not page text" not in page
        assert "\u30100\u2020soil guide\u3011" in page  # a same-site link, without its domain
        followed = _text(box, "browser.open", {"id": 0, "cursor": 0})
        assert followed.startswith(f"[1] Soil guide ({site}/soil.html)") and "Loam drains well" in followed
        found = _text(box, "browser.find", {"pattern": "morning", "cursor": 0})
        assert found.startswith("[2] Find results for text: `morning` in `Tomato care`")
        missing = _text(box, "browser.open", {"id": f"{site}/gone.html"})
        assert missing.startswith(f"Error fetching URL `{site}/gone.html`") and "404" in missing
        cited = box.citation(1, 4)
        assert (cited.url, cited.title, cited.path) == (f"{site}/soil.html", "Soil guide", None)
        # Without a search service the web only opens pages, and says so.
        assert "no web search service" in _text(box, "browser.search", {"query": "tomato"})


def test_search_goes_through_the_search_service(site: str, tmp_path) -> None:
    with Toolbox(web=True, python=False, search_provider=SearxngSearch(site),
                 index_path=tmp_path / "index.sqlite3") as box:
        results = _text(box, "browser.search", {"query": "tomato"})
        assert results.startswith("[0] tomato\n") and "Tomato care" in results and "(tomato)" in results
        opened = _text(box, "browser.open", {"id": 0})
        assert opened.startswith(f"[1] Tomato care ({site}/article.html)")


def test_the_web_is_off_by_default(site: str, tmp_path) -> None:
    library = tmp_path / "notes"
    library.mkdir()
    (library / "a.md").write_text("# A\n\nnothing here\n")
    with Toolbox(library=[library], python=False, index_path=tmp_path / "index.sqlite3") as box:
        refused = _text(box, "browser.open", {"id": f"{site}/article.html"})
        assert "web browsing is off" in refused
