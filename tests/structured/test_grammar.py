"""The grammar layer: llguidance's tokenizer is our vocabulary, compiles are cached and fail with
the format named, and the device-side mask forbids exactly what llguidance's own helper does."""

from __future__ import annotations

import llguidance
import llguidance.numpy
import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.mlx_model.structured import ResponseFormat, StructuredOutputError
from gpt_oss_desktop.mlx_model.structured.bitmask import allocate, allowed_ids, apply
from gpt_oss_desktop.mlx_model.structured.grammar import GRAMMAR_END, compile_format, fill, grammar_tokenizer
from gpt_oss_desktop.mlx_model.tokenizer import MODEL_VOCAB_SIZE

VOCAB = MODEL_VOCAB_SIZE


def test_the_grammar_tokenizer_is_our_vocabulary(real_tokenizer) -> None:
    tokens = grammar_tokenizer(real_tokenizer, VOCAB)
    assert tokens.vocab_size == VOCAB
    text = 'The answer: {"city": "Zürich", "n": 42}'
    assert tokens.tokenize_str(text) == real_tokenizer.encode(text)
    for name in ("<|start|>", "<|channel|>", "<|message|>", "<|constrain|>", "<|end|>", "<|return|>", "<|call|>"):
        token_id = real_tokenizer.encode_special(name)
        assert tokens.is_special_token(token_id)
        assert tokens.decode_bytes([token_id]) == name.encode()
    assert tokens.eos_token == GRAMMAR_END
    assert grammar_tokenizer(real_tokenizer, VOCAB) is tokens  # built once


def test_compiles_are_cached_per_format(real_tokenizer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    first = compile_format(ResponseFormat.json_schema(schema, name="x"), real_tokenizer, VOCAB)
    again = compile_format(ResponseFormat.json_schema(dict(schema), name="x"), real_tokenizer, VOCAB)
    assert again is first
    assert compile_format(ResponseFormat.json_schema(schema, name="y"), real_tokenizer, VOCAB) is not first


@pytest.mark.parametrize(
    ("response_format", "message"),
    [
        (ResponseFormat.regex("(unclosed"), "the regex cannot be compiled: .*unclosed group"),
        (ResponseFormat.lark("start: missing_rule"), "the Lark grammar cannot be compiled: .*unknown name"),
        (ResponseFormat.json_schema({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)b"}}},
                                    name="look"), "the JSON Schema 'look' cannot be compiled: .*look-around"),
        (ResponseFormat.lark("start: A\nA: /[a-c]+/ & /[x-z]+/"), "the Lark grammar allows no first token"),
        # The one way a grammar could end inside a character (and so inside a token's bytes) is text
        # that is not UTF-8: llguidance refuses it when it compiles.
        (ResponseFormat.regex(r"(?-u:\xF0\x9F)"), "the regex cannot be compiled: .*can match invalid UTF-8"),
    ],
)
def test_formats_that_cannot_compile_say_why(response_format, message, real_tokenizer) -> None:
    with pytest.raises(StructuredOutputError, match=message):
        compile_format(response_format, real_tokenizer, VOCAB)


def test_the_device_mask_matches_llguidance(real_tokenizer) -> None:
    grammar = compile_format(ResponseFormat.regex("[0-9]{2}|yes|no"), real_tokenizer, VOCAB)
    matcher = grammar.matcher()
    mask = allocate(VOCAB)
    fill(matcher, mask)
    logits = np.random.default_rng(0).standard_normal(VOCAB).astype(np.float32)
    expected = logits[None].copy()
    llguidance.numpy.apply_token_bitmask_inplace(expected, mask[None])
    masked = np.array(apply(mx.array(logits), mask))
    np.testing.assert_array_equal(masked, expected[0])
    allowed = allowed_ids(mask, VOCAB)
    assert set(np.flatnonzero(np.isfinite(masked))) == set(allowed)
    assert {real_tokenizer.decode([t]) for t in allowed} >= {"yes", "no", "4", "42"}
    assert all(real_tokenizer.decode([t])[:1] in "0123456789yn" for t in allowed)
