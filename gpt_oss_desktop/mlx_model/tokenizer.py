"""o200k_harmony, gpt-oss's tokenizer, on tiktoken.

The Hub ships the vocabulary with the weights as a Hugging Face `tokenizer.json` (byte-level BPE
whose ids are tiktoken's ranks), so a model folder is all that is needed offline: the tiktoken
Encoding is built from that file, with the special tokens at the ids the file gives them. A model
folder without a tokenizer.json is refused, as `hub.check_model_folder` refuses it (tiktoken's own
`o200k_harmony` would download its vocabulary, and the app never goes online on its own); asked
for no folder at all, `load_tokenizer` gives tiktoken's o200k_harmony. `tokenizer_writer` writes
the Hub's three tokenizer files for the random test checkpoints.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tiktoken

O200K_PATTERN = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""The pre-tokenizer split of o200k_base and o200k_harmony, byte-exact."""

BASE_VOCAB_SIZE = 199_998
"""Ordinary BPE tokens, ids 0..199997; the special tokens start at 199998."""

MODEL_VOCAB_SIZE = 201_088
"""Rows of gpt-oss's embedding. Ids the tokenizer file does not name are `<|reserved_N|>`."""

TOKENIZER_FILE = "tokenizer.json"
"""Where a model folder keeps its vocabulary (the Hub's name)."""

RETURN_ID = 200_002
CALL_ID = 200_012

HARMONY_SPECIAL_IDS = {
    "<|startoftext|>": 199_998,
    "<|endoftext|>": 199_999,
    "<|return|>": RETURN_ID,
    "<|constrain|>": 200_003,
    "<|channel|>": 200_005,
    "<|start|>": 200_006,
    "<|end|>": 200_007,
    "<|message|>": 200_008,
    "<|call|>": CALL_ID,
}
"""The named tokens harmony needs; a tokenizer.json must have each at exactly this id."""

_O200K_ANCHORS = {
    "system": 17_360,
    "developer": 77_944,
    "user": 1_428,
    "assistant": 173_781,
    "analysis": 35_644,
    "final": 17_196,
    "json": 4_108,
}
"""Ordinary tokens with their o200k ids: a same-sized vocabulary that disagrees is foreign."""


def _gpt2_byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest for chr(256+)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {byte: chr(byte) for byte in printable}
    stand_ins = (chr(code) for code in range(256, 512))
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = next(stand_ins)
    return mapping


BYTE_TO_UNICODE = _gpt2_byte_to_unicode()
# Characters outside the alphabet map to U+FFFF, which latin-1 cannot encode: they are rejected.
_PIECE_TO_LATIN1 = {ord(char): chr(byte) for byte, char in BYTE_TO_UNICODE.items()}
_PIECE_TO_LATIN1.update({code: "\uffff" for code in range(256) if code not in _PIECE_TO_LATIN1})


def _piece_bytes(piece: str) -> bytes:
    """The bytes of a byte-level string; raises UnicodeEncodeError outside the alphabet."""
    return piece.translate(_PIECE_TO_LATIN1).encode("latin-1")


class TokenizerFileError(ValueError):
    """A tokenizer.json that is broken or is not gpt-oss's o200k_harmony."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class StreamDecoder:
    """Text of token ids as they arrive; a UTF-8 character split across tokens waits until whole.

    Invalid bytes become U+FFFD at once, so the concatenated output equals a one-shot
    `bytes.decode("utf-8", "replace")` of all the tokens' bytes.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._token_bytes = tokenizer.token_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self.feed_bytes(self._token_bytes(token_id))

    def feed_bytes(self, data: bytes) -> str:
        return self._utf8.decode(data)

    def flush(self) -> str:
        """What is held back, as U+FFFD when incomplete; the decoder starts afresh after it."""
        tail = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return tail


class Tokenizer:
    """o200k_harmony: ordinary text encoding, the special tokens by name, and decoding."""

    def __init__(self, encoding: tiktoken.Encoding, source: Path | None = None) -> None:
        self.encoding = encoding
        self.source = source
        """The tokenizer.json it was built from, or None for tiktoken's own o200k_harmony."""
        self.special_ids: Mapping[str, int] = MappingProxyType(
            {name: encoding.encode_single_token(name) for name in encoding.special_tokens_set}
        )
        self._special_id_set = frozenset(self.special_ids.values())
        self.stop_ids_for_assistant: tuple[int, ...] = (
            self.special_ids["<|return|>"],
            self.special_ids["<|call|>"],
        )
        """`<|return|>` and `<|call|>`: where an assistant turn stops sampling (never `<|end|>`)."""

    @property
    def n_vocab(self) -> int:
        return self.encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        """Ordinary text only: `<|start|>` typed by a user stays six plain tokens."""
        return self.encoding.encode_ordinary(text)

    def encode_special(self, name: str) -> int:
        try:
            return self.special_ids[name]
        except KeyError:
            raise ValueError(f"{name!r} is not a special token of {self.encoding.name}") from None

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_id_set

    def token_bytes(self, token_id: int) -> bytes:
        try:
            return self.encoding.decode_single_token_bytes(token_id)
        except KeyError:
            raise ValueError(
                f"token id {token_id} is not in the vocabulary (n_vocab {self.n_vocab})"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids, special tokens spelled out, invalid UTF-8 as U+FFFD."""
        return b"".join(self.token_bytes(token_id) for token_id in ids).decode("utf-8", "replace")

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self)


def load_tokenizer(model_dir: str | Path | None = None) -> Tokenizer:
    """The tokenizer of a model folder (its tokenizer.json), or with no folder tiktoken's o200k_harmony.

    Built Encodings are cached per file (and its size and modification time): building one from
    the Hub's 27 MB tokenizer.json takes about a second.
    """
    if model_dir is None:
        return _tiktoken_o200k_harmony()
    folder = Path(model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        raise TokenizerFileError(path, "is missing: a gpt-oss model folder has the Hub's tokenizer.json")
    stat = path.stat()
    return _tokenizer_from_file(path.resolve(), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=1)
def _tiktoken_o200k_harmony() -> Tokenizer:
    try:
        return Tokenizer(tiktoken.get_encoding("o200k_harmony"))
    except Exception as exc:  # tiktoken fails with whatever its download raised
        raise RuntimeError(
            "tiktoken could not load o200k_harmony: it downloads o200k_base.tiktoken once and "
            "caches it in TIKTOKEN_CACHE_DIR. Offline, load the tokenizer from a model folder "
            f"that has a tokenizer.json instead. ({exc})"
        ) from exc


@lru_cache(maxsize=4)
def _tokenizer_from_file(path: Path, size: int, mtime_ns: int) -> Tokenizer:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerFileError(path, f"cannot be read as JSON ({exc})") from exc
    model = document.get("model") if isinstance(document, dict) else None
    if not (isinstance(model, dict) and model.get("type") == "BPE"):
        raise TokenizerFileError(path, "has no BPE model (expected model.type 'BPE')")
    if O200K_PATTERN not in _split_patterns(document.get("pre_tokenizer")):
        raise TokenizerFileError(
            path, "its pre-tokenizer does not split with o200k's pattern: not an o200k tokenizer"
        )
    ranks = _ranks_from_vocab(path, model.get("vocab"))
    special_tokens = _special_tokens(path, document.get("added_tokens"))
    encoding = tiktoken.Encoding(
        "o200k_harmony",
        pat_str=O200K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=special_tokens,
    )
    return Tokenizer(encoding, source=path)


def _split_patterns(pre_tokenizer: Any) -> list[str]:
    """Every `Regex` split pattern in a (possibly nested) pre-tokenizer description."""
    if isinstance(pre_tokenizer, dict):
        found = [pre_tokenizer["Regex"]] if isinstance(pre_tokenizer.get("Regex"), str) else []
        return found + [p for value in pre_tokenizer.values() for p in _split_patterns(value)]
    if isinstance(pre_tokenizer, list):
        return [p for value in pre_tokenizer for p in _split_patterns(value)]
    return []


def _ranks_from_vocab(path: Path, vocab: Any) -> dict[bytes, int]:
    """tiktoken's ranks are the byte-level BPE ids; checks the vocabulary is o200k's."""
    if not isinstance(vocab, dict):
        raise TokenizerFileError(path, "model.vocab is missing or not an object")
    ranks: dict[bytes, int] = {}
    for piece, token_id in vocab.items():
        if not isinstance(token_id, int) or isinstance(token_id, bool):
            raise TokenizerFileError(
                path, f"vocab entry {piece!r} has a non-integer id {token_id!r}"
            )
        try:
            ranks[_piece_bytes(piece)] = token_id
        except UnicodeEncodeError:
            raise TokenizerFileError(
                path, f"vocab entry {piece!r} is not in the byte-level BPE alphabet"
            ) from None
    if len(ranks) != BASE_VOCAB_SIZE:
        raise TokenizerFileError(
            path,
            f"model.vocab has {len(ranks)} distinct tokens; o200k has {BASE_VOCAB_SIZE}: "
            "not an o200k tokenizer",
        )
    if set(ranks.values()) != set(range(BASE_VOCAB_SIZE)):
        raise TokenizerFileError(path, f"model.vocab ids are not exactly 0..{BASE_VOCAB_SIZE - 1}")
    for text, expected in _O200K_ANCHORS.items():
        if ranks.get(text.encode()) != expected:
            raise TokenizerFileError(
                path,
                f"token {text!r} has id {ranks.get(text.encode())}, o200k's is {expected}: "
                "not an o200k tokenizer",
            )
    return ranks


def _special_tokens(path: Path, added_tokens: Any) -> dict[str, int]:
    """The file's added tokens, with every other id of the model's vocabulary reserved."""
    if not isinstance(added_tokens, list):
        raise TokenizerFileError(path, "added_tokens is missing or not a list")
    special_tokens: dict[str, int] = {}
    for entry in added_tokens:
        token_id = entry.get("id") if isinstance(entry, dict) else None
        name = entry.get("content") if isinstance(entry, dict) else None
        if not isinstance(token_id, int) or not isinstance(name, str) or not name:
            raise TokenizerFileError(path, f"added token {entry!r} needs an integer id and content")
        if token_id < BASE_VOCAB_SIZE:
            raise TokenizerFileError(
                path, f"added token {name!r} has id {token_id}, inside the BPE vocabulary"
            )
        special_tokens[name] = token_id
    for name, expected in HARMONY_SPECIAL_IDS.items():
        if special_tokens.get(name) != expected:
            where = "is missing" if name not in special_tokens else f"has id {special_tokens[name]}"
            raise TokenizerFileError(
                path, f"harmony's {name} {where}; o200k_harmony has it at {expected}"
            )
    named_ids = set(special_tokens.values())
    for token_id in range(BASE_VOCAB_SIZE, MODEL_VOCAB_SIZE):
        if token_id not in named_ids:
            special_tokens[f"<|reserved_{token_id}|>"] = token_id
    return special_tokens
