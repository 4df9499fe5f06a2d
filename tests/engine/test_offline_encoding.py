"""The checkpoint writer's o200k_harmony built from a local o200k_base.tiktoken equals tiktoken's
own encoding (which the session's seeded cache serves without the network)."""

from __future__ import annotations

import os

import pytest
import tiktoken

from gpt_oss_desktop.mlx_model.tokenizer_writer import o200k_harmony_encoding


def test_the_local_copy_gives_tiktokens_o200k_harmony() -> None:
    if not os.environ.get("TIKTOKEN_ENCODINGS_BASE"):
        pytest.skip("TIKTOKEN_ENCODINGS_BASE does not name a local vocabulary")
    ours, theirs = o200k_harmony_encoding(), tiktoken.get_encoding("o200k_harmony")
    assert ours._special_tokens == theirs._special_tokens
    assert ours._mergeable_ranks == theirs._mergeable_ranks
    assert ours._pat_str == theirs._pat_str
    text = "Hello, wörld! 1234 <|start|>"
    assert ours.encode(text, allowed_special="all") == theirs.encode(text, allowed_special="all")
