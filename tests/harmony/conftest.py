"""openai-harmony, the reference these tests hold the project's harmony code to."""

from __future__ import annotations

import pytest
from openai_harmony import HarmonyEncoding, HarmonyEncodingName, load_harmony_encoding

from gpt_oss_desktop.mlx_model.tokenizer import Tokenizer, load_tokenizer


@pytest.fixture(scope="session")
def harmony() -> HarmonyEncoding:
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return load_tokenizer(None)
