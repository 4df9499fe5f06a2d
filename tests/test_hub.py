"""gpt_oss_desktop.mlx_model.hub end to end against a Hub stand-in on 127.0.0.1: resolving paths and Hub ids
offline, planning, downloading only the needed files with byte progress, cancel and resume
with HTTP Range, checksums, a full disk, and the Hugging Face cache.

The stand-in answers the endpoints huggingface_hub 2.4 calls: model info (with file metadata),
the tree listing, and HEAD/GET on `resolve/` URLs with Range, with the Hub's headers
(X-Repo-Commit, ETag, X-Linked-Size). It records every request, can pace its bytes so a test
can cancel in the middle of a file, and stops itself after `lifetime_s` if a test hangs.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import namedtuple
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from gpt_oss_desktop.mlx_model import format_bytes, hub

LFS_SUFFIXES = (".safetensors", ".bin")
PIECE = 1024 * 1024


@dataclass
class Served:
    method: str
    path: str
    range: str | None
    bytes_sent: int = 0


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    corrupt: set[str] = field(default_factory=set)  # served with one byte flipped

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)

    def sha256(self, path: str) -> str:
        return hashlib.sha256(self.files[path]).hexdigest()

    def git_blob_id(self, path: str) -> str:
        content = self.files[path]
        return hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()

    def etag(self, path: str) -> str:
        return self.sha256(path) if self.is_lfs(path) else self.git_blob_id(path)

    def sibling(self, path: str) -> dict:
        entry = {"rfilename": path, "size": len(self.files[path]), "blobId": self.git_blob_id(path)}
        if self.is_lfs(path):
            entry["lfs"] = {"size": len(self.files[path]), "sha256": self.sha256(path), "pointerSize": 134}
        return entry

    def tree_entry(self, path: str) -> dict:
        entry = {"type": "file", "path": path, "size": len(self.files[path]), "oid": self.git_blob_id(path)}
        if self.is_lfs(path):
            entry["lfs"] = {"oid": self.sha256(path), "size": len(self.files[path]), "pointerSize": 134}
        return entry


class FakeHub:
    def __init__(self, repo: FakeRepo, *, seconds_per_mib: float = 0.0, lifetime_s: float = 120.0) -> None:
        self.repo = repo
        self.seconds_per_mib = seconds_per_mib
        self.served: list[Served] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._watchdog = threading.Timer(lifetime_s, self.stop)
        self._watchdog.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread.start()
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._watchdog.cancel()
        self._server.shutdown()
        self._server.server_close()

    def downloads_of(self, path: str) -> list[Served]:
        with self._lock:
            return [s for s in self.served if s.method == "GET" and s.path == path]

    def _record(self, served: Served) -> Served:
        with self._lock:
            self.served.append(served)
        return served

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                self._answer(head=False)

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def _answer(self, *, head: bool) -> None:
                path = unquote(urlparse(self.path).path)
                repo = hub.repo
                api_prefix = f"/api/models/{repo.repo_id}/"
                resolve_prefix = f"/{repo.repo_id}/resolve/"
                if path == api_prefix.rstrip("/") or path.startswith(api_prefix + "revision/"):
                    self._json({"id": repo.repo_id, "sha": repo.commit, "siblings": [repo.sibling(p) for p in repo.files]})
                elif path.startswith(api_prefix + "tree/"):
                    self._json([repo.tree_entry(p) for p in repo.files])
                elif path.startswith(resolve_prefix):
                    revision, _, file_path = path[len(resolve_prefix):].partition("/")
                    if revision not in (repo.commit, "main") or file_path not in repo.files:
                        self._not_found()
                    else:
                        self._file(file_path, head=head)
                else:
                    self._not_found(code="RepoNotFound")

            def _json(self, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self, code: str = "EntryNotFound") -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _file(self, file_path: str, *, head: bool) -> None:
                repo = hub.repo
                content = repo.files[file_path]
                if file_path in repo.corrupt:
                    content = bytes([content[0] ^ 0xFF]) + content[1:]
                requested = self.headers.get("Range")
                served = hub._record(Served("HEAD" if head else "GET", file_path, requested))
                start = 0
                if requested and requested.startswith("bytes="):
                    start = int(requested[len("bytes="):].split("-", 1)[0])
                if start > len(content):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("ETag", f'"{repo.etag(file_path)}"')
                if repo.is_lfs(file_path):
                    self.send_header("X-Linked-Etag", f'"{repo.etag(file_path)}"')
                    self.send_header("X-Linked-Size", str(len(content)))
                self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
                self.send_header("Content-Length", str(len(content) - start))
                self.end_headers()
                if head:
                    return
                try:
                    for offset in range(start, len(content), PIECE):
                        piece = content[offset : offset + PIECE]
                        self.wfile.write(piece)
                        served.bytes_sent += len(piece)
                        if hub.seconds_per_mib:
                            time.sleep(hub.seconds_per_mib * len(piece) / PIECE)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client cancelled

        return Handler


REPO_ID = "openai/gpt-oss-tiny"
SMALL_SHARD = "model-00000-of-00001.safetensors"
BIG_SHARD = "model-00001-of-00001.safetensors"
SKIPPED = ("README.md", "original/model.safetensors", "metal/model.bin")


def make_repo(big_shard_bytes: int = 256 * 1024) -> FakeRepo:
    """A repo in the gpt-oss layout; the big shard comes last so a test can cancel inside it."""
    index = {"metadata": {"total_size": 0}, "weight_map": {"a.weight": SMALL_SHARD, "b.weight": BIG_SHARD}}
    files = {
        "config.json": json.dumps({"num_hidden_layers": 2}).encode(),
        "generation_config.json": b'{"eos_token_id": 200002}',
        "tokenizer.json": b'{"model": "o200k_harmony"}',
        "tokenizer_config.json": b"{}",
        "special_tokens_map.json": b"{}",
        "model.safetensors.index.json": json.dumps(index).encode(),
        "README.md": b"# tiny",
        "original/model.safetensors": os.urandom(4096),
        "metal/model.bin": os.urandom(4096),
        SMALL_SHARD: os.urandom(8192),
        BIG_SHARD: os.urandom(big_shard_bytes),
    }
    return FakeRepo(REPO_ID, files)


@pytest.fixture
def serve():
    """Start a FakeHub for a repo; every hub started is stopped after the test."""
    started: list[FakeHub] = []

    def start(repo: FakeRepo, **options: float) -> FakeHub:
        server = FakeHub(repo, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def needed(repo: FakeRepo) -> dict[str, bytes]:
    return {path: content for path, content in repo.files.items() if hub.is_needed_file(path)}


def test_only_the_files_the_port_reads_are_needed():
    assert hub.is_needed_file("model-00001-of-00002.safetensors")
    assert hub.is_needed_file("model.safetensors.index.json")
    assert hub.is_needed_file("tokenizer.json") and hub.is_needed_file("config.json")
    assert not hub.is_needed_file("original/model--00001-of-00002.safetensors")
    assert not hub.is_needed_file("metal/model.bin")
    assert not hub.is_needed_file("README.md")


def test_plan_measures_the_needed_files_and_the_free_disk(serve, tmp_path):
    repo = make_repo()
    server = serve(repo)

    plan = hub.plan_download(REPO_ID, tmp_path / "models", endpoint=server.url)

    assert {f.path for f in plan.files} == set(needed(repo))
    assert plan.total_bytes == sum(len(c) for c in needed(repo).values())
    assert plan.present_bytes == 0 and plan.remaining_bytes == plan.total_bytes
    assert plan.commit == repo.commit
    assert plan.target == tmp_path / "models" / "openai" / "gpt-oss-tiny"
    assert plan.free_bytes > 0 and plan.fits_on_disk


def test_download_fetches_only_needed_files_with_byte_progress_and_then_runs_offline(serve, tmp_path):
    repo = make_repo()
    server = serve(repo)
    models = tmp_path / "models"
    reports: list[tuple[int, int]] = []

    plan = hub.plan_download(REPO_ID, models, endpoint=server.url)
    folder = hub.download(plan, progress=lambda done, total: reports.append((done, total)), endpoint=server.url)

    for path, content in needed(repo).items():
        assert (folder / path).read_bytes() == content
    for path in SKIPPED:
        assert not (folder / path).exists() and not server.downloads_of(path)
    assert reports[-1] == (plan.total_bytes, plan.total_bytes)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
    assert not (folder / hub.PARTIAL_DIR).exists()

    server.stop()  # from here on there is no Hub
    assert hub.resolve_model(REPO_ID, models_dir=models) == folder.resolve()


def test_cancel_keeps_the_partial_file_and_resume_continues_it_with_a_range_request(serve, tmp_path):
    repo = make_repo(big_shard_bytes=24 * 1024 * 1024)
    # Paced so the first 10 MB chunk of the big shard is reported before the next one arrives.
    server = serve(repo, seconds_per_mib=0.02)
    models = tmp_path / "models"
    plan = hub.plan_download(REPO_ID, models, endpoint=server.url)
    before_big_shard = plan.total_bytes - len(repo.files[BIG_SHARD])
    cancel = threading.Event()

    def cancel_inside_big_shard(done: int, total: int) -> None:
        if done > before_big_shard:
            cancel.set()

    with pytest.raises(hub.DownloadCancelled):
        hub.download(plan, progress=cancel_inside_big_shard, cancel=cancel, endpoint=server.url)

    partial = plan.target / hub.PARTIAL_DIR / (BIG_SHARD + hub.PARTIAL_SUFFIX)
    kept = partial.stat().st_size
    assert 0 < kept < len(repo.files[BIG_SHARD])
    assert partial.read_bytes() == repo.files[BIG_SHARD][:kept]
    with pytest.raises(hub.NotDownloadedError):
        hub.resolve_model(REPO_ID, models_dir=models)

    resumed_plan = hub.plan_download(REPO_ID, models, endpoint=server.url)
    assert resumed_plan.present_bytes == before_big_shard + kept
    requests_before_resume = len(server.served)
    folder = hub.download(resumed_plan, endpoint=server.url)

    resumed = server.served[requests_before_resume:]
    assert [s.path for s in resumed] == [BIG_SHARD], "finished files are not fetched again"
    assert resumed[0].range == f"bytes={kept}-"
    assert resumed[0].bytes_sent == len(repo.files[BIG_SHARD]) - kept
    assert (folder / BIG_SHARD).read_bytes() == repo.files[BIG_SHARD]
    assert hub.resolve_model(REPO_ID, models_dir=models) == folder.resolve()


def test_a_new_commit_discards_partial_files_of_the_old_one(serve, tmp_path):
    repo = make_repo(big_shard_bytes=24 * 1024 * 1024)
    server = serve(repo, seconds_per_mib=0.02)
    models = tmp_path / "models"
    plan = hub.plan_download(REPO_ID, models, endpoint=server.url)
    cancel = threading.Event()
    with pytest.raises(hub.DownloadCancelled):
        hub.download(
            plan,
            progress=lambda done, total: cancel.set() if done > plan.total_bytes // 2 else None,
            cancel=cancel,
            endpoint=server.url,
        )

    repo.commit = "fedcba9876543210fedcba9876543210fedcba98"
    repo.files[BIG_SHARD] = os.urandom(1024 * 1024)
    server.seconds_per_mib = 0.0
    new_plan = hub.plan_download(REPO_ID, models, endpoint=server.url)
    assert new_plan.present_bytes == new_plan.total_bytes - len(repo.files[BIG_SHARD])
    folder = hub.download(new_plan, endpoint=server.url)

    assert server.downloads_of(BIG_SHARD)[-1].range is None
    assert (folder / BIG_SHARD).read_bytes() == repo.files[BIG_SHARD]


def test_a_file_that_fails_its_checksum_is_deleted_and_reported(serve, tmp_path):
    repo = make_repo()
    repo.corrupt.add(SMALL_SHARD)
    server = serve(repo)
    models = tmp_path / "models"
    plan = hub.plan_download(REPO_ID, models, endpoint=server.url)

    with pytest.raises(hub.DownloadError, match="checksum"):
        hub.download(plan, endpoint=server.url)

    assert not (plan.target / SMALL_SHARD).exists()
    assert not (plan.target / hub.PARTIAL_DIR / (SMALL_SHARD + hub.PARTIAL_SUFFIX)).exists()
    with pytest.raises(hub.NotDownloadedError):
        hub.resolve_model(REPO_ID, models_dir=models)


def test_a_download_that_does_not_fit_on_the_disk_is_refused_before_any_byte(serve, tmp_path, monkeypatch):
    repo = make_repo()
    server = serve(repo)
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 1024))

    plan = hub.plan_download(REPO_ID, tmp_path / "models", endpoint=server.url)
    assert not plan.fits_on_disk
    with pytest.raises(hub.NotEnoughDiskError, match="free"):
        hub.download(plan, endpoint=server.url)
    assert not [s for s in server.served if s.method == "GET"]


def test_an_unknown_repo_and_an_unreachable_hub_are_clear_errors(serve, tmp_path):
    server = serve(make_repo())
    with pytest.raises(hub.DownloadError, match="no model openai/nope"):
        hub.plan_download("openai/nope", tmp_path, endpoint=server.url)
    server.stop()
    with pytest.raises(hub.DownloadError, match="Could not reach the Hub"):
        hub.plan_download(REPO_ID, tmp_path, endpoint=server.url)


def write_model_folder(folder: Path, repo: FakeRepo) -> Path:
    for path, content in needed(repo).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    return folder


def test_resolve_accepts_a_complete_folder_and_names_what_is_missing(tmp_path):
    folder = write_model_folder(tmp_path / "model", make_repo())
    assert hub.resolve_model(str(folder)) == folder.resolve()

    (folder / BIG_SHARD).unlink()
    with pytest.raises(hub.ModelNotFoundError, match=BIG_SHARD):
        hub.resolve_model(str(folder))
    (folder / "tokenizer.json").unlink()
    with pytest.raises(hub.ModelNotFoundError, match="tokenizer.json"):
        hub.resolve_model(str(folder))
    with pytest.raises(hub.ModelNotFoundError, match="No model folder at"):
        hub.resolve_model(str(tmp_path / "absent"))
    with pytest.raises(hub.ModelNotFoundError, match="No model given"):
        hub.resolve_model("  ")
    with pytest.raises(hub.NotDownloadedError) as raised:
        hub.resolve_model("openai/gpt-oss-20b", models_dir=tmp_path / "models", cache_dir=tmp_path / "hf")
    assert raised.value.repo_id == "openai/gpt-oss-20b"


def test_a_copy_in_the_hugging_face_cache_is_used_offline(serve, tmp_path):
    from huggingface_hub import snapshot_download

    repo = make_repo()
    server = serve(repo)
    snapshot = snapshot_download(REPO_ID, cache_dir=tmp_path / "hf", endpoint=server.url)
    server.stop()

    found = hub.resolve_model(REPO_ID, models_dir=tmp_path / "models", cache_dir=tmp_path / "hf")
    assert found == Path(snapshot).resolve()


def test_sizes_read_like_finder():
    assert format_bytes(13_761_264_768) == "13.8 GB"
    assert format_bytes(512) == "512 bytes"
    assert format_bytes(2_500_000) == "2.5 MB"


def test_no_network_is_named_as_such_not_as_a_socket_errno(tmp_path):
    """Offline, the host name does not resolve: the message says so and what to do (the ".invalid"
    top-level domain never resolves, so this holds online too)."""
    with pytest.raises(hub.DownloadError) as raised:
        hub.plan_download(REPO_ID, tmp_path, endpoint="http://huggingface.invalid")
    message = str(raised.value)
    assert "offline" in message and "open a model folder that is already on this disk" in message
    assert "Errno" not in message
