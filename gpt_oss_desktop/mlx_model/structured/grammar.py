"""Grammars compiled by llguidance over gpt-oss's own tiktoken vocabulary, and matchers on them.

Why llguidance (measured on o200k_harmony, this CPU, see bench/structured.py and the commit):
its JSON Schema compile is lazy (~1 ms against xgrammar 0.2.8's ~18 ms for the same schema),
its mask costs the same few microseconds per token, it reads a tiktoken Encoding directly, its
Lark dialect names harmony's special tokens, and its abi3 wheel needs nothing else (xgrammar
requires torch and transformers at run time, and triton on Linux).

The grammar tokenizer's end-of-sequence is `<|endoftext|>`, which harmony never writes: a mask
bit on it means "the grammar may end here", and the region that uses the grammar turns it into
its own end token (`<|return|>` for an answer, `<|call|>` for tool arguments).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import llguidance
import numpy as np

from ..tokenizer import BASE_VOCAB_SIZE, Tokenizer
from .bitmask import allocate, allowed_count, is_allowed
from .formats import ResponseFormat, StructuredOutputError

GRAMMAR_END = 199_999  # <|endoftext|>
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ?", "key_separator": ": ?"}
"""Compact JSON, with the single space after ',' and ':' that the model's JSON usually has:
unbounded whitespace would let a weak model pad its answer until the token limit."""


@lru_cache(maxsize=2)
def grammar_tokenizer(tokenizer: Tokenizer, n_vocab: int) -> llguidance.LLTokenizer:
    """llguidance's view of our encoding, built once per tokenizer (about a second).

    tiktoken's o200k_harmony names id 200018 twice (`<|endofprompt|>` and
    `<|reserved_200018|>`), which llguidance would count as an extra id: one name per id is kept,
    and ids at or past the model's vocabulary (`<|reserved_201088|>`) are left out.
    """
    encoding = tokenizer.encoding
    special: dict[str, int] = {}
    taken: set[int] = set()
    for name, token_id in sorted(encoding._special_tokens.items(), key=lambda item: (item[1], item[0])):
        if token_id < n_vocab and token_id not in taken:
            special[name] = token_id
            taken.add(token_id)
    return llguidance.LLTokenizer.from_tiktoken(
        encoder=encoding._mergeable_ranks, special_tokens=special, pattern=encoding._pat_str,
        eos_token=GRAMMAR_END, n_vocab=n_vocab,
    )


@dataclass(frozen=True)
class Grammar:
    """A compiled grammar: `what` names it in errors; matchers are copies of a pristine one
    (llguidance's errors are sticky, so a used matcher is never reset and reused)."""

    what: str
    pristine: llguidance.LLMatcher

    def matcher(self) -> llguidance.LLMatcher:
        return self.pristine.deep_copy()


def compile_format(response_format: ResponseFormat, tokenizer: Tokenizer, n_vocab: int) -> Grammar:
    what = {
        "json_schema": f"the JSON Schema {response_format.name!r}",
        "json_object": "JSON mode",
        "lark": "the Lark grammar",
        "regex": "the regex",
    }[response_format.kind]
    return _compiled(tokenizer, n_vocab, response_format.kind, response_format.grammar, what)


def compile_json_schema(schema: dict, tokenizer: Tokenizer, n_vocab: int, what: str) -> Grammar:
    return _compiled(tokenizer, n_vocab, "json_schema", json.dumps(schema, separators=(",", ":")), what)


def compile_lark(text: str, tokenizer: Tokenizer, n_vocab: int, what: str) -> Grammar:
    return _compiled(tokenizer, n_vocab, "lark", text, what)


@lru_cache(maxsize=64)
def _compiled(tokenizer: Tokenizer, n_vocab: int, kind: str, text: str, what: str) -> Grammar:
    """Compiled once per (tokenizer, kind, text): a schema sent with every request costs its
    compile only the first time."""
    if kind == "json_schema":
        source = llguidance.LLMatcher.grammar_from_json_schema(text, defaults=JSON_OPTIONS)
    elif kind == "json_object":
        source = llguidance.LLMatcher.grammar_from_json_schema({"type": "object"}, defaults=JSON_OPTIONS)
    elif kind == "lark":
        source = llguidance.LLMatcher.grammar_from_lark(text)
    else:
        source = llguidance.LLMatcher.grammar_from_regex(text)
    grammar_tokens = grammar_tokenizer(tokenizer, n_vocab)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(source, grammar_tokens)
    if is_error:
        raise StructuredOutputError(f"{what} cannot be compiled: {_one_line(messages)}")
    matcher = llguidance.LLMatcher(grammar_tokens, source, log_level=0)
    mask = allocate(n_vocab)
    fill(matcher, mask)
    if matcher.is_error() or allowed_count(mask) == 0:
        reason = matcher.get_error().splitlines()[0] if matcher.is_error() else "empty mask"
        raise StructuredOutputError(f"{what} allows no first token: no text matches it ({reason})")
    return Grammar(what, matcher)


def _one_line(messages: list[str]) -> str:
    """llguidance's messages span lines (with a caret under the place); a request error is one."""
    return " ".join(" ".join(line.split()) for message in messages for line in message.splitlines() if line.strip())


def fill(matcher: llguidance.LLMatcher, mask: np.ndarray) -> None:
    """The next-token mask into `mask` (one int32 row); llguidance releases the GIL meanwhile."""
    matcher.unsafe_compute_mask_ptr(mask.ctypes.data, mask.nbytes)


def may_end(mask: np.ndarray) -> bool:
    return is_allowed(mask, GRAMMAR_END)


def forbid_special(mask: np.ndarray) -> None:
    """No special token inside an answer or arguments: `<|end|>` there would end the message
    (the grammar's own end is added back by the region)."""
    first_word = BASE_VOCAB_SIZE // 32
    keep = BASE_VOCAB_SIZE % 32
    mask[first_word] &= np.int32(np.uint32((1 << keep) - 1).view(np.int32)) if keep else 0
    mask[first_word + 1 :] = 0
