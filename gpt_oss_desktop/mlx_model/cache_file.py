"""Prompt caches on disk, so a long chat reopened after a restart prefills only what is new.

A file holds one `PromptCache`: every layer's keys and values, the window snapshots it can
rewind to (with their logits), and the exact tokens they cover, as safetensors. Its header says
what it was made by: the checkpoint (a fingerprint of config.json and the shards' headers), the
load options that change the numbers (dense bits, the KV cache's dtype and bits), and a SHA-256
of every array, so a file that is truncated, corrupted, from another model or from other options
is refused (`CacheFileError`, which says which) and never used.

Files are written atomically (a temporary file, fsync, rename), so a crash mid-write leaves the
previous file or none. `CacheStore` keeps them in a folder within a disk budget, least recently
used out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import mlx.core as mx
import numpy as np

from .cache import FullCache, WindowCache, WindowSnapshot
from .loader import LoadOptions
from .model import Model
from .prompt_cache import Checkpoint, PromptCache, resume_point

FORMAT = "gpt-oss-desktop prompt cache 1"
_log = logging.getLogger(__name__)


class CacheFileError(ValueError):
    """A cache file that must not be used; the message names the file and why."""


@dataclass(frozen=True)
class CacheStamp:
    """What a cache's numbers depend on: the checkpoint and the options that change them."""

    fingerprint: str
    options: str  # JSON

    @classmethod
    def of(cls, folder: Path, options: LoadOptions, kv_dtype: mx.Dtype) -> "CacheStamp":
        return cls(checkpoint_fingerprint(folder), json.dumps(
            {"dense_bits": options.dense_bits, "kv_bits": options.kv_bits, "kv_dtype": str(kv_dtype)},
            sort_keys=True))


def checkpoint_fingerprint(folder: Path) -> str:
    """SHA-256 of config.json and every shard's name, size and safetensors header (the tensors'
    names, dtypes, shapes and offsets): milliseconds to read, and it changes with the weights'
    layout. Shards rewritten in place with other values of the same layout are the weight-file
    check's business (Engine.check_files)."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for shard in sorted(folder.glob("*.safetensors")):
        with shard.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            digest.update(f"{shard.name}:{shard.stat().st_size}:".encode())
            digest.update(file.read(length))
    return digest.hexdigest()


def _bytes_of(array: mx.array) -> bytes:
    if array.dtype in (mx.bfloat16, mx.float16):
        array = array.view(mx.uint16)
    return np.asarray(array).tobytes()


def _checksum(arrays: dict[str, mx.array]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(f"{name}:{arrays[name].dtype}:{arrays[name].shape}:".encode())
        digest.update(_bytes_of(arrays[name]))
    return digest.hexdigest()


class _Arrays:
    """Arrays under short names, each stored once however many snapshots share it."""

    def __init__(self) -> None:
        self.by_name: dict[str, mx.array] = {}
        self._names: dict[int, str] = {}

    def name(self, array: mx.array | None) -> str | None:
        if array is None:
            return None
        if id(array) not in self._names:
            self._names[id(array)] = f"a{len(self.by_name)}"
            self.by_name[self._names[id(array)]] = array
        return self._names[id(array)]


def _window(snapshot: WindowSnapshot | None, arrays: _Arrays) -> dict | None:
    if snapshot is None:
        return None
    return {"offset": snapshot.offset, "keys": arrays.name(snapshot.keys), "values": arrays.name(snapshot.values)}


def save(cache: PromptCache, path: Path, stamp: CacheStamp, history: int | None = None) -> int:
    """Write `cache` to `path` atomically; returns the file's size. `history`: how many of its
    tokens the last prompt it read covered (the rest are that reply's own; default all)."""
    arrays = _Arrays()
    layers = []
    for layer in cache.layers:
        if isinstance(layer, FullCache):
            buffers = [arrays.name(b[:, :, : layer.offset]) for b in layer.state] if layer.offset else []
            layers.append({"kind": "full", "offset": layer.offset, "bits": layer.bits, "buffers": buffers})
        else:
            layers.append({"kind": "window", **_window(layer.snapshot(), arrays)})
    checkpoints = [{"position": position, "windows": [_window(w, arrays) for w in checkpoint.windows],
                    "logits": arrays.name(checkpoint.logits)}
                   for position, checkpoint in sorted(cache.checkpoints.items())]
    tensors = {**arrays.by_name, "tokens": mx.array(cache.tokens, dtype=mx.int32)}
    mx.eval(*tensors.values())
    metadata = {"format": FORMAT, "fingerprint": stamp.fingerprint, "options": stamp.options,
                "token_count": str(len(cache.tokens)), "sha256": _checksum(tensors),
                "history": str(len(cache.tokens) if history is None else history),
                "layout": json.dumps({"layers": layers, "checkpoints": checkpoints})}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.safetensors")
    try:
        mx.save_safetensors(str(temporary), tensors, metadata=metadata)
        with temporary.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
    return path.stat().st_size


def load(path: Path, model: Model, stamp: CacheStamp) -> PromptCache:
    """The cache `path` holds, for `model` loaded as `stamp` says; CacheFileError otherwise."""
    try:
        tensors, metadata = mx.load(str(path), return_metadata=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise CacheFileError(f"{path}: not a readable cache file (truncated or damaged: {error})") from None
    if metadata.get("format") != FORMAT:
        raise CacheFileError(f"{path}: not a prompt cache of this version (format {metadata.get('format')!r})")
    if metadata.get("fingerprint") != stamp.fingerprint:
        raise CacheFileError(f"{path}: made by another model checkpoint")
    if metadata.get("options") != stamp.options:
        raise CacheFileError(f"{path}: made with other load options ({metadata.get('options')}, now {stamp.options})")
    if _checksum(tensors) != metadata.get("sha256"):
        raise CacheFileError(f"{path}: its contents do not match its checksum (the file is damaged)")
    try:
        return _restore(model, tensors, json.loads(metadata["layout"]), int(metadata["token_count"]))
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise CacheFileError(f"{path}: its layout does not fit this model ({error})") from None


def _restore(model: Model, tensors: dict[str, mx.array], layout: dict, token_count: int) -> PromptCache:
    def array(name: str | None) -> mx.array | None:
        return None if name is None else tensors[name]

    def window(entry: dict | None) -> WindowSnapshot | None:
        return None if entry is None else WindowSnapshot(entry["offset"], array(entry["keys"]), array(entry["values"]))

    cache = PromptCache(model)
    tokens = tensors["tokens"].tolist()
    if len(tokens) != token_count or len(layout["layers"]) != len(cache.layers):
        raise ValueError(f"{len(layout['layers'])} layers and {len(tokens)} tokens")
    for layer, entry in zip(cache.layers, layout["layers"]):
        kind = "full" if isinstance(layer, FullCache) else "window"
        if entry["kind"] != kind or entry["offset"] != token_count:
            raise ValueError(f"a {entry['kind']} layer at {entry['offset']} where the model has a {kind} layer")
        if isinstance(layer, WindowCache):
            layer.restore(window(entry))
        else:
            if entry["bits"] != layer.bits:
                raise ValueError(f"{entry['bits']}-bit keys where the model keeps {layer.bits}")
            layer.restore([tensors[name] for name in entry["buffers"]], entry["offset"])
    checkpoints = {c["position"]: Checkpoint(tuple(window(w) for w in c["windows"]), array(c["logits"]))
                   for c in layout["checkpoints"]}
    if 0 not in checkpoints or max(checkpoints) > token_count:
        raise ValueError("snapshots outside the tokens")
    cache.restore_state(tokens, checkpoints)
    return cache


@dataclass(frozen=True)
class CacheSummary:
    """What a cache file holds, read without its keys and values: enough to tell how much of a
    prompt it would spare and whether this engine may use it."""

    tokens: list[int]
    checkpoints: dict[int, bool]  # position -> whether its logits are kept
    stamp: CacheStamp
    history: int  # tokens of the last prompt it read; the rest are that reply's own

    def reusable_prefix(self, prompt: list[int]) -> int:
        return resume_point(self.tokens, self.checkpoints, prompt)[0]


def _read_header(file: BinaryIO) -> dict:
    """A safetensors header, leaving `file` at the start of the arrays' bytes."""
    (length,) = struct.unpack("<Q", file.read(8))
    return json.loads(file.read(min(length, 1 << 26)))


def _header(path: Path) -> dict:
    with path.open("rb") as file:
        return _read_header(file)


def _summary(path: Path) -> CacheSummary:
    with path.open("rb") as file:
        header = _read_header(file)
        metadata = header["__metadata__"]
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        if header["tokens"]["dtype"] != "I32":
            raise ValueError(f"token ids as {header['tokens']['dtype']}")
        start, end = header["tokens"]["data_offsets"]
        file.seek(start, os.SEEK_CUR)
        tokens = np.frombuffer(file.read(end - start), dtype="<i4").tolist()
    if len(tokens) != int(metadata["token_count"]):
        raise ValueError("truncated token ids")
    checkpoints = {c["position"]: c["logits"] is not None for c in json.loads(metadata["layout"])["checkpoints"]}
    return CacheSummary(tokens, checkpoints, CacheStamp(metadata["fingerprint"], metadata["options"]),
                        int(metadata.get("history", len(tokens))))


class CacheStore:
    """Cache files in `folder`, one per key (a chat's id), within `budget_bytes` of disk: writing
    one past the budget removes the least recently used (read or written) others."""

    def __init__(self, folder: Path, budget_bytes: int) -> None:
        self.folder = Path(folder)
        self.budget_bytes = budget_bytes
        self._summaries: dict[Path, tuple[tuple[int, int], CacheSummary]] = {}

    def path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors"

    def files(self) -> list[Path]:
        """The cache files, least recently used first."""
        if not self.folder.is_dir():
            return []
        return sorted((p for p in self.folder.glob("*.safetensors") if not p.name.startswith(".")),
                      key=lambda p: p.stat().st_mtime_ns)

    def save(self, key: str, cache: PromptCache, stamp: CacheStamp, history: int | None = None) -> bool:
        """Write `key`'s cache (`history` as `save` takes it) and evict to the budget; False
        when it alone exceeds the budget (then it is not kept)."""
        path = self.path(key)
        size = save(cache, path, stamp, history)
        others = [p for p in self.files() if p != path]
        total = size + sum(p.stat().st_size for p in others)
        for old in others:
            if total <= self.budget_bytes:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
        if total > self.budget_bytes:
            path.unlink(missing_ok=True)
            return False
        return True

    def token_count(self, key: str) -> int | None:
        """How many tokens `key`'s file says it holds (its header only), or None without one."""
        path = self.path(key)
        try:
            return int(_header(path)["__metadata__"]["token_count"])
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None if not path.is_file() else 0  # unreadable: load() says why

    def summary(self, path: Path) -> CacheSummary | None:
        """What `path` holds, from its header and token ids (remembered while the file is
        unchanged); None for a file that cannot be read."""
        try:
            status = path.stat()
            known = self._summaries.get(path)
            if known is None or known[0] != (status.st_mtime_ns, status.st_size):
                known = ((status.st_mtime_ns, status.st_size), _summary(path))
                self._summaries[path] = known
            return known[1]
        except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
            return None

    def load(self, key: str, model: Model, stamp: CacheStamp) -> tuple[PromptCache | None, str | None]:
        """`key`'s cache, or None; with a note when a file was there but refused (and removed)."""
        path = self.path(key)
        if not path.is_file():
            return None, None
        return self.load_file(path, model, stamp)

    def load_file(self, path: Path, model: Model, stamp: CacheStamp) -> tuple[PromptCache | None, str | None]:
        """The cache in `path` (one of `files()`), or None with a note saying why it was refused
        (and removed)."""
        try:
            cache = load(path, model, stamp)
        except CacheFileError as error:
            path.unlink(missing_ok=True)
            note = f"The saved prompt cache was discarded and the chat will be read again: {error}"
            _log.warning(note)
            return None, note
        os.utime(path)  # now the most recently used
        return cache, None

    def discard(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
