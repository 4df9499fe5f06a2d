"""The Hub's three tokenizer files (tokenizer.json, tokenizer_config.json, special_tokens_map.json)
of gpt-oss, written from tiktoken's o200k_harmony for the random test checkpoints
(`checkpoint_writer`). A development tool: nothing the app or the terminal chat runs imports it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import tiktoken
from tiktoken.load import load_tiktoken_bpe

from .tokenizer import BYTE_TO_UNICODE, HARMONY_SPECIAL_IDS, MODEL_VOCAB_SIZE, O200K_PATTERN

_HUB_ADDED_TOKENS = {
    token_id: name
    for name, token_id in {
        **{f"<|reserved_{i}|>": i for i in range(200_000, 200_018)},
        **HARMONY_SPECIAL_IDS,
        "<|endofprompt|>": 200_018,
    }.items()
}
"""The 21 added tokens of openai/gpt-oss-20b's tokenizer.json (199998..200018)."""


O200K_BASE_FILE = "o200k_base.tiktoken"
O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
"""tiktoken's own checksum of the o200k_base ranks, checked on a local copy too."""


def o200k_harmony_encoding() -> tiktoken.Encoding:
    """tiktoken's o200k_harmony. Where TIKTOKEN_ENCODINGS_BASE (the variable openai-harmony reads)
    names a folder holding o200k_base.tiktoken, it is built from that file, so writing checkpoints
    (tests, bench/) needs no network; otherwise tiktoken downloads and caches it."""
    local = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
    if not local or not (Path(local) / O200K_BASE_FILE).is_file():
        return tiktoken.get_encoding("o200k_harmony")
    ranks = load_tiktoken_bpe(str(Path(local) / O200K_BASE_FILE), expected_hash=O200K_BASE_SHA256)
    named = set(HARMONY_SPECIAL_IDS.values())
    # As tiktoken has them: every id from 200000 not named by harmony is reserved (200018 also
    # goes by <|endofprompt|>).
    special_tokens = {f"<|reserved_{token_id}|>": token_id for token_id in range(200_000, MODEL_VOCAB_SIZE)
                      if token_id not in named}
    special_tokens |= HARMONY_SPECIAL_IDS | {"<|endofprompt|>": 200_018}
    return tiktoken.Encoding("o200k_harmony", pat_str=O200K_PATTERN, mergeable_ranks=ranks,
                             special_tokens=special_tokens)


def _piece_text(token: bytes) -> str:
    """The byte-level string a tokenizer.json uses for a token's bytes."""
    return token.decode("latin-1").translate(BYTE_TO_UNICODE)


def write_tokenizer_files(folder: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json as the Hub has them.

    The bytes are generated once per process (from tiktoken's o200k_harmony) and reused.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in _hub_tokenizer_files():
        (folder / name).write_bytes(content)


@lru_cache(maxsize=1)
def _hub_tokenizer_files() -> tuple[tuple[str, bytes], ...]:
    encoding = o200k_harmony_encoding()
    ranks = {token: encoding.encode_single_token(token) for token in encoding.token_byte_values()}
    special_map = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|return|>",
        "pad_token": "<|endoftext|>",
    }
    flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    config = {
        "added_tokens_decoder": {
            str(token_id): {"content": name, **flags, "special": True}
            for token_id, name in sorted(_HUB_ADDED_TOKENS.items())
        },
        **special_map,
        "clean_up_tokenization_spaces": False,
        "extra_special_tokens": {},
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    return (
        (
            "tokenizer.json",
            json.dumps(_hub_tokenizer_json(ranks), indent=2, ensure_ascii=False).encode(),
        ),
        ("tokenizer_config.json", _pretty_sorted_json(config)),
        ("special_tokens_map.json", _pretty_sorted_json(special_map)),
    )


def _pretty_sorted_json(value: Any) -> bytes:
    """How transformers saves its tokenizer configuration files."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _hub_tokenizer_json(ranks: Mapping[bytes, int]) -> dict[str, Any]:
    """The Hugging Face tokenizers document of openai/gpt-oss-20b, key for key."""
    by_id = sorted(ranks.items(), key=lambda item: item[1])

    def byte_level(add_prefix_space: bool, trim_offsets: bool, use_regex: bool) -> dict[str, Any]:
        return {
            "type": "ByteLevel",
            "add_prefix_space": add_prefix_space,
            "trim_offsets": trim_offsets,
            "use_regex": use_regex,
        }

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": token_id,
                "content": name,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for token_id, name in sorted(_HUB_ADDED_TOKENS.items())
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": O200K_PATTERN},
                    "behavior": "Isolated",
                    "invert": False,
                },
                byte_level(add_prefix_space=False, trim_offsets=True, use_regex=False),
            ],
        },
        "post_processor": byte_level(add_prefix_space=True, trim_offsets=False, use_regex=True),
        "decoder": byte_level(add_prefix_space=True, trim_offsets=True, use_regex=True),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": {_piece_text(token): token_id for token, token_id in by_id},
            "merges": [
                [_piece_text(left), _piece_text(right)]
                for token, token_id in by_id
                if len(token) > 1
                for left, right in [_last_merge(ranks, token, token_id)]
            ],
        },
    }


def _last_merge(ranks: Mapping[bytes, int], token: bytes, rank: int) -> tuple[bytes, bytes]:
    """The pair a token is merged from: BPE of its bytes with lower ranks only stops at two."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_rank, best_at = rank, -1
        for at in range(len(parts) - 1):
            pair_rank = ranks.get(parts[at] + parts[at + 1])
            if pair_rank is not None and pair_rank < best_rank:
                best_rank, best_at = pair_rank, at
        if best_at < 0:
            raise ValueError(f"token {token!r} (rank {rank}) cannot be reached by BPE merges")
        parts[best_at : best_at + 2] = [parts[best_at] + parts[best_at + 1]]
    return parts[0], parts[1]
