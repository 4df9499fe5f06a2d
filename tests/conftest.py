"""Session-wide test set-up: an environment that does not depend on the caller's shell, the real
vocabulary offline, and Qt without a screen."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Variables that change what the code under test does, cleared before anything reads them
# (huggingface_hub reads its HF_* settings once, at import): HF_HUB_OFFLINE=1 in a user's shell
# would turn the hub tests' requests to their 127.0.0.1 stand-in into offline errors, a
# GPT_OSS_KERNELS choice would move every kernel call, a data folder override would point tests
# at the user's models. A test that needs one of them sets it with monkeypatch.
_CALLER_SETTINGS = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_OFFLINE", "GPT_OSS_", "METAL_EMULATOR_CXXFLAGS")
for _name in [name for name in os.environ if name.startswith(_CALLER_SETTINGS)]:
    del os.environ[_name]

# Qt tests run without a display everywhere, including on a developer's Mac.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

# tiktoken caches o200k_base under the sha1 of its download URL. Where .ci/run (or a developer)
# points TIKTOKEN_ENCODINGS_BASE at ../shared/tokenizer, seed that cache so tiktoken never needs
# the network; openai-harmony reads TIKTOKEN_ENCODINGS_BASE itself.
_O200K_CACHE_NAME = "fb374d419588a4632f3f557e76b4b70aebbca790"
_vocab_dir = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
if _vocab_dir:  # a cache of the caller's own (TIKTOKEN_CACHE_DIR) may lack the file: not used
    _cache = Path(tempfile.mkdtemp(prefix="tiktoken-cache-"))
    shutil.copyfile(Path(_vocab_dir) / "o200k_base.tiktoken", _cache / _O200K_CACHE_NAME)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_cache)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def harmony_model_dir() -> Path:
    """A tiny gpt-oss trained in this session to answer its script in harmony form (see
    tests/support/harmony_model.py); cached across sessions under the user's cache folder."""
    from support.harmony_model import trained_harmony_model

    return trained_harmony_model()


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    """Every test gets its own empty data folder (mlx_model.paths), never the user's models and chats."""
    from gpt_oss_desktop.mlx_model.paths import DATA_DIR_ENV

    folder = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder
