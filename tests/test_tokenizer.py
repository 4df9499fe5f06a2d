"""o200k_harmony from tiktoken and from a model folder's tokenizer.json; the Hub files we write."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import tokenizers

from gpt_oss_desktop.mlx_model.tokenizer import (
    CALL_ID,
    MODEL_VOCAB_SIZE,
    RETURN_ID,
    Tokenizer,
    TokenizerFileError,
    load_tokenizer,
)
from gpt_oss_desktop.mlx_model.tokenizer_writer import write_tokenizer_files

SAMPLES = [
    "Hello world!",
    "Ünïcödé 你好 🎉 12345 1234567",
    "  \n\n\ttabs and   spaces  ",
    "don't I'M they'll WE'VE",
    "a\r\nb\r\n\r\n",
    "日本語のテキストと emoji 👩‍👩‍👧",
    "def f(x):\n    return x ** 2  # square\n",
    '{"location": "Tokyo", "unit": "celsius"}',
]

HARMONY_IDS = {
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|call|>": 200012,
}


@pytest.fixture(scope="module")
def tiktoken_harmony() -> Tokenizer:
    return load_tokenizer(None)


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hub-tokenizer")
    write_tokenizer_files(folder)
    return folder


@pytest.fixture(scope="module")
def hub_document(hub_folder: Path) -> dict:
    return json.loads((hub_folder / "tokenizer.json").read_text(encoding="utf-8"))


def test_without_a_folder_it_is_tiktokens_o200k_harmony(tiktoken_harmony: Tokenizer) -> None:
    assert tiktoken_harmony.source is None
    assert tiktoken_harmony.encoding.name == "o200k_harmony"
    assert tiktoken_harmony.n_vocab == MODEL_VOCAB_SIZE
    for name, token_id in HARMONY_IDS.items():
        assert tiktoken_harmony.encode_special(name) == token_id
        assert tiktoken_harmony.special_ids[name] == token_id
        assert tiktoken_harmony.is_special(token_id)
    assert tiktoken_harmony.stop_ids_for_assistant == (RETURN_ID, CALL_ID) == (200002, 200012)
    assert not tiktoken_harmony.is_special(17360)


def test_a_folder_without_tokenizer_json_is_refused_as_the_terminal_chat_refuses_it(tmp_path: Path) -> None:
    """One rule for a model folder without tokenizer.json: the tokenizer module, the engine and
    `gpt-oss-chat` (through hub.check_model_folder) all refuse it, naming the file."""
    from gpt_oss_desktop.mlx_model.checkpoint_writer import write_random_checkpoint
    from gpt_oss_desktop.mlx_model.cli import main as chat_main
    from gpt_oss_desktop.mlx_model.engine import Engine

    folder = write_random_checkpoint(tmp_path / "model", "tiny", shards=1, tokenizer=False)
    with pytest.raises(TokenizerFileError, match="tokenizer.json: is missing") as refused:
        load_tokenizer(folder)
    assert refused.value.path == folder / "tokenizer.json"
    with pytest.raises(TokenizerFileError, match="tokenizer.json: is missing"):
        Engine.load(folder)
    err = io.StringIO()
    assert chat_main(["--model", str(folder), "--prompt", "hi"], stderr=err) == 2
    assert "tokenizer.json is missing" in err.getvalue()


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "nowhere")


def test_text_that_spells_special_tokens_stays_ordinary(tiktoken_harmony: Tokenizer) -> None:
    text = "<|start|>assistant<|channel|>final<|message|>hi<|return|>"
    ids = tiktoken_harmony.encode(text)
    assert not any(tiktoken_harmony.is_special(i) for i in ids)
    assert tiktoken_harmony.decode(ids) == text


def test_useful_ids_match_the_reference(tiktoken_harmony: Tokenizer) -> None:
    assert tiktoken_harmony.encode("assistant") == [173781]
    assert tiktoken_harmony.encode("commentary") == [12606, 815]
    assert tiktoken_harmony.decode([200006, 173781, 200005, 17196, 200008]) == (
        "<|start|>assistant<|channel|>final<|message|>"
    )


def test_unknown_names_and_ids_are_clear_errors(tiktoken_harmony: Tokenizer) -> None:
    with pytest.raises(ValueError, match="not a special token"):
        tiktoken_harmony.encode_special("<|refusal|>")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tiktoken_harmony.decode([MODEL_VOCAB_SIZE + 5])


def _byte_ids(tokenizer: Tokenizer, data: bytes) -> list[int]:
    return [tokenizer.encoding.encode_single_token(bytes([b])) for b in data]


def test_stream_decoder_holds_back_a_split_character(tiktoken_harmony: Tokenizer) -> None:
    decoder = tiktoken_harmony.stream_decoder()
    euro = _byte_ids(tiktoken_harmony, "€".encode())
    assert [decoder.feed(i) for i in euro] == ["", "", "€"]
    assert decoder.feed(_byte_ids(tiktoken_harmony, b"\xff")[0]) == "\ufffd"
    assert [decoder.feed(i) for i in _byte_ids(tiktoken_harmony, "😀".encode()[:3])] == ["", "", ""]
    assert decoder.flush() == "\ufffd"
    assert decoder.feed(tiktoken_harmony.encode("ok")[0]) == "ok"


def test_stream_decoder_adds_up_to_a_one_shot_decode(tiktoken_harmony: Tokenizer) -> None:
    ids = tiktoken_harmony.encode("".join(SAMPLES))
    ids += _byte_ids(tiktoken_harmony, b"\xe2\x82x\xed\xa0\x80\xf0\x9f\x98")
    decoder = tiktoken_harmony.stream_decoder()
    streamed = "".join(decoder.feed(i) for i in ids) + decoder.flush()
    assert streamed == tiktoken_harmony.decode(ids)


def test_hub_tokenizer_json_has_the_gpt_oss_layout(hub_document: dict) -> None:
    assert list(hub_document) == [
        "version", "truncation", "padding", "added_tokens", "normalizer",
        "pre_tokenizer", "post_processor", "decoder", "model",
    ]  # fmt: skip
    added = {entry["id"]: entry for entry in hub_document["added_tokens"]}
    assert sorted(added) == list(range(199998, 200019))
    for name, token_id in HARMONY_IDS.items():
        assert added[token_id]["content"] == name
    assert added[200018]["content"] == "<|endofprompt|>"
    assert all(entry["special"] and not entry["normalized"] for entry in added.values())
    model = hub_document["model"]
    assert model["type"] == "BPE" and model["ignore_merges"] is True
    assert len(model["vocab"]) == 199998
    assert list(model["vocab"].values()) == list(range(199998))
    assert len(model["merges"]) == 199998 - 256
    assert model["merges"][0] == ["Ġ", "Ġ"]
    split, byte_level = hub_document["pre_tokenizer"]["pretokenizers"]
    assert split["type"] == "Split" and split["behavior"] == "Isolated"
    assert byte_level == {
        "type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False,
    }  # fmt: skip


def test_hub_config_files(hub_folder: Path) -> None:
    special_map = json.loads((hub_folder / "special_tokens_map.json").read_text(encoding="utf-8"))
    assert special_map == {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|return|>",
        "pad_token": "<|endoftext|>",
    }
    config = json.loads((hub_folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert {k: config[k] for k in special_map} == special_map
    assert config["clean_up_tokenization_spaces"] is False
    assert config["model_input_names"] == ["input_ids", "attention_mask"]
    decoder = config["added_tokens_decoder"]
    assert list(decoder) == [str(i) for i in range(199998, 200019)]
    assert decoder["200012"] == {
        "content": "<|call|>", "lstrip": False, "normalized": False, "rstrip": False,
        "single_word": False, "special": True,
    }  # fmt: skip


def test_hugging_face_tokenizers_reads_it_as_tiktoken_encodes(
    hub_folder: Path, tiktoken_harmony: Tokenizer
) -> None:
    hf = tokenizers.Tokenizer.from_file(str(hub_folder / "tokenizer.json"))
    for text in SAMPLES:
        assert hf.encode(text, add_special_tokens=False).ids == tiktoken_harmony.encode(text)
    for name, token_id in HARMONY_IDS.items():
        assert hf.token_to_id(name) == token_id
    assert hf.decode([200006, 173781], skip_special_tokens=False) == "<|start|>assistant"


def test_loaded_from_the_folder_it_equals_tiktoken(
    hub_folder: Path, tiktoken_harmony: Tokenizer
) -> None:
    loaded = load_tokenizer(hub_folder)
    assert loaded.source == (hub_folder / "tokenizer.json").resolve()
    assert loaded.n_vocab == MODEL_VOCAB_SIZE
    for text in SAMPLES:
        assert loaded.encode(text) == tiktoken_harmony.encode(text)
    for name, token_id in HARMONY_IDS.items():
        assert loaded.encode_special(name) == token_id
    assert loaded.stop_ids_for_assistant == (200002, 200012)
    # Ids the file does not name are reserved, up to the model's vocabulary.
    assert loaded.decode([200500, MODEL_VOCAB_SIZE - 1]) == "<|reserved_200500|><|reserved_201087|>"
    assert loaded.decode([200018]) == "<|endofprompt|>"


def test_loading_and_writing_are_cached(hub_folder: Path, tmp_path: Path) -> None:
    assert load_tokenizer(hub_folder) is load_tokenizer(str(hub_folder))
    write_tokenizer_files(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / name).read_bytes() == (hub_folder / name).read_bytes()


def test_a_broken_tokenizer_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": {')
    with pytest.raises(
        TokenizerFileError, match="tokenizer.json: cannot be read as JSON"
    ) as caught:
        load_tokenizer(tmp_path)
    assert isinstance(caught.value, ValueError)
    assert caught.value.path == (tmp_path / "tokenizer.json").resolve()


def test_a_foreign_tokenizer_is_refused(tmp_path: Path) -> None:
    gpt2_like = {
        "added_tokens": [{"id": 3, "content": "<|endoftext|>", "special": True}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]},
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(gpt2_like))
    with pytest.raises(TokenizerFileError, match="not an o200k tokenizer"):
        load_tokenizer(tmp_path)


def _write_variant(folder: Path, document: dict) -> None:
    (folder / "tokenizer.json").write_text(json.dumps(document))


def test_a_small_vocabulary_with_o200ks_pattern_is_refused(
    hub_document: dict, tmp_path: Path
) -> None:
    model = {**hub_document["model"], "vocab": {"a": 0, "b": 1}, "merges": []}
    _write_variant(tmp_path, {**hub_document, "model": model})
    with pytest.raises(TokenizerFileError, match="model.vocab has 2 distinct tokens"):
        load_tokenizer(tmp_path)


def test_a_harmony_token_at_the_wrong_id_is_refused(hub_document: dict, tmp_path: Path) -> None:
    added = [
        {**entry, "id": 200013} if entry["content"] == "<|call|>" else entry
        for entry in hub_document["added_tokens"]
        if entry["id"] != 200013
    ]
    _write_variant(tmp_path, {**hub_document, "added_tokens": added})
    with pytest.raises(TokenizerFileError, match=r"<\|call\|> has id 200013; .* at 200012"):
        load_tokenizer(tmp_path)
