"""What the first run offers on a given Mac, and the memory check before a load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.models import (
    CATALOGUE,
    GB,
    check_model_fit,
    load_options_for,
    memory_summary,
    offer,
)
from mlx_model.loader import LoadOptions

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


def test_the_load_check_uses_the_given_estimate_for_the_folder_context_and_options():
    asked: list[tuple[Path, int, LoadOptions]] = []

    def estimate(folder: Path, context_length: int, options: LoadOptions) -> Estimate:
        asked.append((folder, context_length, options))
        return Estimate(10 * GB, context_length * 1_000_000)

    eight_bit = LoadOptions(dense_bits=8)
    verdict = check_model_fit(Path("/models/tiny"), 8192, eight_bit, estimate, total_ram=24 * GB)  # the GPU gets 2/3
    assert asked == [(Path("/models/tiny"), 8192, eight_bit)]
    assert verdict.needed_bytes == 10 * GB + 8192 * 1_000_000 and verdict.runs and not verdict.fits
    assert check_model_fit(Path("/models/tiny"), None, eight_bit, estimate, total_ram=24 * GB).fits
    assert asked[-1] == (Path("/models/tiny"), 4096, eight_bit), "automatic context: the smallest the engine picks"


def test_manual_options_win_else_what_fits_else_the_defaults():
    asked: list[tuple[Path, int]] = []
    paged = LoadOptions(dense_bits=8, expert_budget_bytes=9 * GIB)

    def fit(folder: Path, context_length: int) -> LoadOptions | None:
        asked.append((folder, context_length))
        return paged if context_length < 100_000 else None

    folder, manual = Path("/models/tiny"), LoadOptions(embedding="resident")
    assert load_options_for(manual, folder, 8192, fit) == manual and asked == []
    assert load_options_for(None, folder, None, fit) == paged and asked == [(folder, 4096)]
    assert load_options_for(None, folder, 131072, fit) == LoadOptions()


def test_the_memory_summary_names_only_what_a_load_gives_up():
    assert memory_summary(LoadOptions()) == memory_summary(LoadOptions(embedding="resident")) == ""
    assert memory_summary(LoadOptions(dense_bits=8, expert_budget_bytes=int(8.5 * GIB))) == (
        "8-bit attention and unembedding, experts paged, 8.5 GiB in memory"
    )
