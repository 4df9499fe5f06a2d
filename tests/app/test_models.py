"""What the first run offers on a given Mac, and the memory check before a load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.models import CATALOGUE, GB, check_model_fit, offer

GIB = 1024**3

TWENTY, HUNDRED_TWENTY = CATALOGUE


def test_20b_fits_a_32_gb_mac_runs_tightly_on_16_gb_and_120b_needs_96_gb():
    assert offer(TWENTY, 32 * GIB).fits
    tight = offer(TWENTY, 16 * GIB)
    assert tight.runs and not tight.fits
    assert "run slowly" in tight.message and "17.2 GB" in tight.message  # 16 GiB, in Finder's units

    refused = offer(HUNDRED_TWENTY, 64 * GIB)
    assert not refused.runs
    assert refused.message.startswith("gpt-oss-120b will not fit") and "68.7 GB" in refused.message
    assert offer(HUNDRED_TWENTY, 96 * GIB).fits
    assert offer(HUNDRED_TWENTY, 128 * GIB).fits


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

    verdict = check_model_fit(Path("/models/tiny"), 8192, estimate, total_ram=24 * GB)  # the GPU gets 2/3
    assert asked == [(Path("/models/tiny"), 8192)]
    assert verdict.needed_bytes == 10 * GB + 8192 * 1_000_000 and verdict.runs and not verdict.fits
    assert check_model_fit(Path("/models/tiny"), None, estimate, total_ram=24 * GB).fits
    assert asked[-1] == (Path("/models/tiny"), 4096), "automatic context is checked at the smallest the engine picks"
