"""Finding a gpt-oss model from a folder path or a Hub id, and downloading one that can be resumed.

Qt-free: the desktop app and the terminal chat share it. Nothing here touches the network except
`plan_download` and `download`, so once a model is on disk the app runs offline.

Why not `snapshot_download` for the transfer: in huggingface_hub 2.4 each file is fetched into a
process-unique `<blob>.<uuid>.incomplete` that is deleted when the call fails or is interrupted
(`file_download._download_to_tmp_and_move`), so a cancelled 5 GB shard starts again from zero.
Here each file streams through huggingface_hub's own `http_get` (its retries, headers and resume
from an offset) into `<target>/.download/<name>.incomplete`, which a later run continues with an
HTTP Range request. The listing comes from one `model_info(files_metadata=True)` call, which
gives the commit, every size and every checksum, and each finished file is verified against it.

Cancelling: the progress object `http_get` updates after every chunk raises `DownloadCancelled`
when the caller's event is set. The partial file stays a valid prefix and is closed normally,
and no child process or IPC is needed; the cost is that cancel takes effect at the next chunk
(`constants.DOWNLOAD_CHUNK_SIZE`, 10 MB) or at the socket's read timeout.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import shard_files
from .config import ModelFolderError
from .tokenizer import TOKENIZER_FILE
from .units import format_bytes

MANIFEST_NAME = ".gpt-oss-download.json"
"""Written into a downloaded model folder: the repo, the commit and each verified file."""
PARTIAL_DIR = ".download"
PARTIAL_SUFFIX = ".incomplete"
DISK_MARGIN_BYTES = 512 * 1024**2
"""Kept free beyond the download itself, so the disk is not filled to the last byte."""

_NEEDED_NAMES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HASH_BLOCK = 8 * 1024**2

Progress = Callable[[int, int], None]
"""Called with (bytes on disk, bytes in total) as a download advances."""


class HubError(Exception):
    """A model could not be found or fetched; the message tells the user what and why."""


class ModelNotFoundError(HubError):
    """A path that is not a usable model folder, or text that is neither a path nor a Hub id."""


class NotDownloadedError(HubError):
    """A Hub id with no complete copy on this machine: offer to download it."""

    def __init__(self, repo_id: str) -> None:
        super().__init__(f"{repo_id} is not downloaded yet.")
        self.repo_id = repo_id


class DownloadCancelled(HubError):
    """The user cancelled; what was fetched stays on disk and the next download resumes it."""


class NotEnoughDiskError(HubError):
    """The download does not fit on the disk; nothing already fetched is deleted."""


class DownloadError(HubError):
    """The Hub could not be reached, refused the request, or sent a file that fails its checksum."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Hub repo at a commit, with what a finished copy must hash to."""

    path: str
    size: int
    sha256: str | None = None  # LFS files (the weights)
    git_blob_id: str | None = None  # small files kept in git

    @property
    def identity(self) -> str:
        return f"sha256:{self.sha256}" if self.sha256 else f"git:{self.git_blob_id}"


@dataclass(frozen=True)
class DownloadPlan:
    """What a download of `repo_id` into `target` involves, measured before it starts."""

    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]
    target: Path
    present_bytes: int
    free_bytes: int

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def remaining_bytes(self) -> int:
        return self.total_bytes - self.present_bytes

    @property
    def fits_on_disk(self) -> bool:
        return self.remaining_bytes + DISK_MARGIN_BYTES <= self.free_bytes


@dataclass
class _Manifest:
    repo_id: str
    commit: str
    complete: bool = False
    verified: dict[str, str] = field(default_factory=dict)  # path -> RemoteFile.identity

    @classmethod
    def read(cls, folder: Path) -> _Manifest | None:
        try:
            data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
            return cls(data["repo_id"], data["commit"], bool(data["complete"]), dict(data["verified"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, folder: Path) -> None:
        """Atomically, so a crash never leaves a half-written manifest that claims completeness."""
        temporary = folder / (MANIFEST_NAME + ".tmp")
        temporary.write_text(
            json.dumps(
                {"repo_id": self.repo_id, "commit": self.commit, "complete": self.complete, "verified": self.verified},
                indent=2,
            ),
            encoding="utf-8",
        )
        os.replace(temporary, folder / MANIFEST_NAME)


def is_needed_file(repo_path: str) -> bool:
    """The files the MLX port reads: root weights, index, configs and tokenizer; not `original/`
    (the PyTorch layout) nor `metal/` (OpenAI's Metal runtime), which would double the download."""
    return "/" not in repo_path and (repo_path.endswith(".safetensors") or repo_path in _NEEDED_NAMES)


def is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not Path(text).expanduser().exists()


def downloaded_model_dir(models_dir: Path, repo_id: str) -> Path:
    """Where `download` puts `repo_id` (`<models_dir>/<owner>/<name>`)."""
    owner, name = repo_id.split("/", 1)
    return Path(models_dir) / owner / name


def check_model_folder(folder: str | Path) -> Path:
    """`folder` if it holds a complete model (config, tokenizer, every weight shard), else an error
    that names the first thing missing."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(f"No model folder at {folder}.")
    for name in ("config.json", TOKENIZER_FILE):  # the tokenizer module refuses a folder without it too
        if not (folder / name).is_file():
            raise ModelNotFoundError(f"{folder} is not a gpt-oss model folder: {name} is missing.")
    try:
        shard_files(folder)
    except ModelFolderError as error:
        raise ModelNotFoundError(f"{folder} is incomplete: {error}") from error
    return folder.resolve()


def resolve_model(path_or_id: str, *, models_dir: Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """The model folder for a local path or a Hub id, without any network access.

    A Hub id is looked up in the app's downloads (`models_dir`) and then in the Hugging Face cache,
    so a model fetched earlier with `hf download` is used as it is. Raises `NotDownloadedError`
    when neither holds a complete copy, and `ModelNotFoundError` for a bad path.
    """
    text = path_or_id.strip()
    if not is_hub_id(text):
        if not text:
            raise ModelNotFoundError("No model given: pass a model folder or a Hub id such as openai/gpt-oss-20b.")
        return check_model_folder(text)
    if models_dir is not None:
        folder = downloaded_model_dir(models_dir, text)
        manifest = _Manifest.read(folder)
        if manifest is not None and manifest.complete and manifest.repo_id == text:
            return check_model_folder(folder)
    cached = hf_cache_snapshot(text, cache_dir=cache_dir)
    if cached is not None:
        return cached
    raise NotDownloadedError(text)


def hf_cache_snapshot(repo_id: str, *, cache_dir: str | Path | None = None) -> Path | None:
    """A complete copy of `repo_id` in the Hugging Face cache, or None; never goes online."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        snapshot = snapshot_download(
            repo_id,
            cache_dir=cache_dir,
            local_files_only=True,
            allow_patterns=["*.safetensors", "*.json"],
            ignore_patterns=["*/*"],
        )
    except (LocalEntryNotFoundError, IncompleteSnapshotError):
        return None
    try:
        return check_model_folder(snapshot)
    except ModelNotFoundError:
        return None


def plan_download(
    repo_id: str,
    models_dir: Path,
    *,
    revision: str | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> DownloadPlan:
    """Ask the Hub what `repo_id` holds and measure what is left to fetch and the free disk."""
    import httpx2  # huggingface_hub 2.x's HTTP client
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=revision, files_metadata=True)
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise DownloadError(f"The Hub has no model {repo_id}" + (f" at {revision}" if revision else "") + ".") from error
    except (HfHubHTTPError, OSError, httpx2.HTTPError) as error:
        raise DownloadError(f"Could not reach the Hub to look up {repo_id}: {_reason(error)}") from error
    files = tuple(
        RemoteFile(
            path=sibling.rfilename,
            size=int(sibling.lfs.size if sibling.lfs else sibling.size or 0),
            sha256=sibling.lfs.sha256 if sibling.lfs else None,
            git_blob_id=None if sibling.lfs else sibling.blob_id,
        )
        for sibling in info.siblings or ()
        if is_needed_file(sibling.rfilename)
    )
    if not any(f.path.endswith(".safetensors") for f in files):
        raise DownloadError(f"{repo_id} has no safetensors weights at its root: not a gpt-oss model in the Hub layout.")
    target = downloaded_model_dir(models_dir, repo_id)
    manifest = _Manifest.read(target)
    same_commit = manifest is not None and manifest.commit == info.sha
    present = sum(_present_bytes(target, f, manifest, same_commit) for f in files)
    return DownloadPlan(repo_id, str(info.sha), files, target, present, free_disk_bytes(target))


def download(
    plan: DownloadPlan,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Fetch what `plan` lists into `plan.target`, resuming partial files; returns the folder.

    Blocking: run it off any GUI thread. Raises `DownloadCancelled` when `cancel` is set (partial
    files are kept for the next call), `NotEnoughDiskError`, or `DownloadError`.
    """
    import httpx2  # huggingface_hub 2.x's HTTP client
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    cancel = cancel or threading.Event()
    free = free_disk_bytes(plan.target)
    if plan.remaining_bytes + DISK_MARGIN_BYTES > free:
        raise NotEnoughDiskError(
            f"Downloading {plan.repo_id} needs {format_bytes(plan.remaining_bytes)} more, but only "
            f"{format_bytes(free)} is free on the disk that holds {plan.target}. Free some space and try again."
        )
    partial_dir = plan.target / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest.read(plan.target)
    if manifest is None or manifest.commit != plan.commit or manifest.repo_id != plan.repo_id:
        _discard_partials(partial_dir)
        manifest = _Manifest(plan.repo_id, plan.commit)
    manifest.complete = False
    manifest.write(plan.target)

    counter = _ByteCounter(plan.total_bytes, progress, cancel)
    headers = build_hf_headers(token=token)
    for remote in plan.files:
        final = plan.target / remote.path
        if manifest.verified.get(remote.path) == remote.identity and final.is_file():
            counter.finish_file(remote.size)
            continue
        if cancel.is_set():
            raise DownloadCancelled(f"Download of {plan.repo_id} cancelled.")
        partial = partial_dir / (remote.path + PARTIAL_SUFFIX)
        url = hf_hub_url(plan.repo_id, remote.path, revision=plan.commit, endpoint=endpoint)
        try:
            with open(partial, "ab") as sink:
                resume_from = sink.tell()
                if resume_from > remote.size:  # not a prefix of this file: start over
                    sink.truncate(0)
                    resume_from = 0
                http_get(
                    url,
                    sink,
                    resume_size=resume_from,
                    headers=dict(headers),
                    expected_size=remote.size,
                    displayed_filename=remote.path,
                    tqdm_class=counter.file_progress_class(),
                )
        except DownloadCancelled:
            raise DownloadCancelled(f"Download of {plan.repo_id} cancelled.") from None
        except OSError as error:  # the disk, or the Hub's answer (HfHubHTTPError is an OSError)
            if error.errno == errno.ENOSPC:
                raise NotEnoughDiskError(
                    f"The disk filled up while downloading {remote.path}. What was fetched is kept; "
                    "free some space and resume."
                ) from error
            raise DownloadError(f"Could not download {remote.path} of {plan.repo_id}: {_reason(error)}") from error
        except httpx2.HTTPError as error:  # the connection, once huggingface_hub's retries are spent
            raise DownloadError(f"The connection failed while downloading {remote.path}: {_reason(error)}") from error
        if not _matches(partial, remote):
            partial.unlink()
            raise DownloadError(
                f"{remote.path} of {plan.repo_id} arrived corrupted (its checksum does not match the Hub's). "
                "It was deleted; try the download again."
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        manifest.verified[remote.path] = remote.identity
        manifest.write(plan.target)
        counter.finish_file(remote.size)
    manifest.complete = True
    manifest.write(plan.target)
    shutil.rmtree(partial_dir, ignore_errors=True)
    return plan.target


class _ByteCounter:
    """Sums bytes across files for `progress` and stops the transfer when `cancel` is set."""

    def __init__(self, total: int, progress: Progress | None, cancel: threading.Event) -> None:
        self.total = total
        self.finished = 0
        self.current = 0
        self._progress = progress
        self._cancel = cancel
        self._last_report = 0.0

    def finish_file(self, size: int) -> None:
        self.finished += size
        self.current = 0
        self._report(force=True)

    def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._progress is not None and (force or now - self._last_report >= 0.1):
            self._last_report = now
            self._progress(self.finished + self.current, self.total)

    def file_progress_class(self) -> type:
        """A tqdm stand-in for one file; `http_get` passes the bytes already on disk as `initial`."""
        counter = self

        class FileProgress:
            def __init__(self, *args: Any, initial: int = 0, **kwargs: Any) -> None:
                counter.current = initial
                counter._report(force=True)

            def __enter__(self) -> FileProgress:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def update(self, n: int | float | None = 1) -> None:
                if counter._cancel.is_set():
                    raise DownloadCancelled
                counter.current += int(n or 0)
                counter._report()

            def close(self) -> None:
                return None

        return FileProgress


def _present_bytes(target: Path, remote: RemoteFile, manifest: _Manifest | None, same_commit: bool) -> int:
    if manifest is not None and manifest.verified.get(remote.path) == remote.identity and (target / remote.path).is_file():
        return remote.size
    partial = target / PARTIAL_DIR / (remote.path + PARTIAL_SUFFIX)
    if same_commit and partial.is_file():
        return min(partial.stat().st_size, remote.size)
    return 0


def _matches(path: Path, remote: RemoteFile) -> bool:
    if path.stat().st_size != remote.size:
        return False
    if remote.sha256:
        digest = hashlib.sha256()
    elif remote.git_blob_id:
        digest = hashlib.sha1(f"blob {remote.size}\0".encode())
    else:
        return True
    with open(path, "rb") as source:
        while block := source.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest() == (remote.sha256 or remote.git_blob_id)


def _discard_partials(partial_dir: Path) -> None:
    for leftover in partial_dir.rglob("*" + PARTIAL_SUFFIX):
        leftover.unlink()


def free_disk_bytes(target: Path) -> int:
    """Free space on the disk that will hold `target` (its nearest existing parent)."""
    probe = Path(target).resolve()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


OFFLINE_REASON = (
    "this computer seems to be offline: the Hub's address could not be found (no network, or no DNS). "
    "Connect to the internet and try again, or open a model folder that is already on this disk."
)


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _reason(error: BaseException) -> str:
    """What went wrong, in words: a network failure is named for what the user can do, not as
    the socket's `[Errno -2]`."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return OFFLINE_REASON
        if isinstance(cause, ConnectionRefusedError):
            return "the Hub refused the connection (a proxy or firewall may block it). Try again later."
        if isinstance(cause, TimeoutError) or type(cause).__name__.endswith("Timeout"):
            return "the connection timed out (the network is slow or down). Try again."
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
