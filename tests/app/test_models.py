"""What the first run offers on a given Mac, and the memory check before a load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.models import CATALOGUE, GB, check_model_fit, gpu_budget_bytes, offer, total_ram_bytes

TWENTY, HUNDRED_TWENTY = CATALOGUE


def test_total_ram_is_read_from_the_system():
    assert 512 * 1024**2 < total_ram_bytes() < 64 * 1024**4


def test_the_gpu_budget_follows_macos_working_set_shares():
    assert gpu_budget_bytes(24 * GB) == 16 * GB
    assert gpu_budget_bytes(128 * GB) == 96 * GB


def test_20b_fits_a_32_gb_mac_runs_tightly_on_16_gb_and_120b_needs_96_gb():
    assert offer(TWENTY, 32 * GB).fits
    tight = offer(TWENTY, 16 * GB)
    assert tight.runs and not tight.fits
    assert "run slowly" in tight.message and "16.0 GB" in tight.message

    refused = offer(HUNDRED_TWENTY, 64 * GB)
    assert not refused.runs
    assert refused.message.startswith("gpt-oss-120b will not fit") and "64.0 GB" in refused.message
    assert offer(HUNDRED_TWENTY, 96 * GB).runs
    assert offer(HUNDRED_TWENTY, 128 * GB).fits


def test_a_longer_context_needs_more_memory():
    assert TWENTY.estimate(131072).total_bytes - TWENTY.estimate(4096).total_bytes == TWENTY.kv_bytes_per_token * (131072 - 4096)


@dataclass(frozen=True)
class Estimate:
    weights_bytes: int
    kv_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes


def test_the_load_check_uses_the_given_estimate_for_the_folder_and_context():
    asked: list[tuple[Path, int]] = []

    def estimate(folder: Path, context_length: int) -> Estimate:
        asked.append((folder, context_length))
        return Estimate(10 * GB, context_length * 1_000_000)

    verdict = check_model_fit(Path("/models/tiny"), 8192, estimate, total_ram=24 * GB)
    assert asked == [(Path("/models/tiny"), 8192)]
    assert verdict.needed_bytes == 10 * GB + 8192 * 1_000_000 and verdict.runs and not verdict.fits
    assert check_model_fit(Path("/models/tiny"), None, estimate, total_ram=24 * GB).fits
    assert asked[-1] == (Path("/models/tiny"), 4096), "automatic context is checked at the smallest the engine picks"
