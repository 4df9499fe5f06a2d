"""The suite's outcome does not depend on the caller's shell: settings that would change what the
code under test does are cleared by tests/conftest.py before anything reads them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_hub_offline_mode_a_kernel_choice_and_a_data_folder_in_the_shell_change_nothing(tmp_path):
    shell = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",  # would refuse every request to the hub tests' stand-in
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "GPT_OSS_KERNELS": "gpu",  # an unknown backend: any forward pass would raise
        "GPT_OSS_DESKTOP_DATA_DIR": str(tmp_path / "not-a-folder"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    (tmp_path / "not-a-folder").write_text("a file where the data folder would be")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_hub.py", "tests/app/test_paths.py",
         "tests/model/test_incremental.py::test_chunked_and_token_by_token_match_full_forward"],
        cwd=REPO_ROOT, env=shell, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
