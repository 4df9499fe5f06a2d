"""Session-wide test set-up: the real vocabulary offline, and Qt without a screen."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Qt tests run without a display everywhere, including on a developer's Mac.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# tiktoken caches o200k_base under the sha1 of its download URL. Where .ci/run (or a developer)
# points TIKTOKEN_ENCODINGS_BASE at ../shared/tokenizer, seed that cache so tiktoken never needs
# the network; openai-harmony reads TIKTOKEN_ENCODINGS_BASE itself.
_O200K_CACHE_NAME = "fb374d419588a4632f3f557e76b4b70aebbca790"
_vocab_dir = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
if _vocab_dir and "TIKTOKEN_CACHE_DIR" not in os.environ:
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
