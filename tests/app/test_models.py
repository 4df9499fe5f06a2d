"""What the first run offers on a given Mac, and the memory check before a load."""

from __future__ import annotations

import dataclasses

from gpt_oss_desktop.app.models import CATALOGUE, offer
from gpt_oss_desktop.mlx_model import (  # memory: the figures a plan is made of
    GIB,
    LoadOptions,
    memory,
    memory_summary,
    plan_load,
)

GB = 1000**3

TWENTY, HUNDRED_TWENTY = CATALOGUE


def test_20b_runs_exact_on_16_gb_with_experts_paged_and_as_published_from_24_gb():
    exact = offer(TWENTY, 16 * GIB)
    assert exact.fits
    assert exact.message == (
        "gpt-oss-20b fits this Mac's 11.5 GB GPU budget with 82% of its experts in memory; "
        "the rest are read from disk as needed, which makes replies slower."
    )
    for mac_gib in (24, 32):
        published = offer(TWENTY, mac_gib * GIB)
        assert published.fits and published.message.startswith("gpt-oss-20b needs about 13.2 GB of the")


def test_120b_pages_experts_on_64_gb_is_as_published_from_96_gb_and_very_slow_on_16_gb():
    paged = offer(HUNDRED_TWENTY, 64 * GIB)
    assert paged.fits and paged.needed_bytes <= paged.budget_bytes
    assert paged.message == (
        "gpt-oss-120b fits this Mac's 51.5 GB GPU budget with 78% of its experts in memory; "
        "the rest are read from disk as needed, which makes replies slower."
    )
    for mac_gib in (96, 128):
        published = offer(HUNDRED_TWENTY, mac_gib * GIB)
        assert published.fits and published.message.startswith("gpt-oss-120b needs about 64.8 GB of the")

    crawling = offer(HUNDRED_TWENTY, 16 * GIB)
    assert crawling.message == (
        "gpt-oss-120b fits this Mac's 11.5 GB GPU budget with 8-bit attention and unembedding and 15% of "
        "its experts in memory; the rest are read from disk as needed, which changes its answers and "
        "makes replies very slow."
    )


def test_the_offer_uses_the_manual_memory_options():
    as_published = offer(HUNDRED_TWENTY, 16 * GIB, manual=LoadOptions())
    assert not as_published.runs and as_published.message.startswith("gpt-oss-120b will not fit")
    assert "run slowly" in offer(TWENTY, 16 * GIB, manual=LoadOptions()).message
    rounded = offer(TWENTY, 16 * GIB, manual=LoadOptions(dense_bits=8, expert_budget_bytes=4 * GIB))
    assert rounded.fits and "with 8-bit attention and unembedding and 42% of its experts in memory" in rounded.message
    roomy = offer(TWENTY, 64 * GIB, manual=LoadOptions(expert_budget_bytes=20 * GIB))
    assert roomy.message.startswith("gpt-oss-20b needs about"), "a budget above the experts pages none"


def test_a_longer_context_needs_more_memory_and_leaves_less_for_experts():
    config = HUNDRED_TWENTY.config
    long, short = offer(HUNDRED_TWENTY, 128 * GIB, 131072), offer(HUNDRED_TWENTY, 128 * GIB)
    assert long.needed_bytes - short.needed_bytes == memory.kv_bytes_per_token(config) * (131072 - 4096)
    assert "with 70% of its experts in memory" in offer(HUNDRED_TWENTY, 64 * GIB, 131072).message


def test_the_load_check_uses_the_estimate_for_the_folder_context_and_options(harmony_model_dir):
    eight_bit = LoadOptions(dense_bits=8)
    plan = plan_load(harmony_model_dir, 8192, eight_bit, total_ram=24 * GB)
    assert (plan.context_length, plan.options) == (8192, eight_bit)
    assert plan.estimate == memory.estimate(harmony_model_dir, 8192, eight_bit)
    assert plan.name == harmony_model_dir.name
    automatic_context = plan_load(harmony_model_dir, None, eight_bit, total_ram=24 * GB)
    assert automatic_context.context_length == 4096, "automatic context: the smallest the engine picks"
    assert automatic_context.estimate == memory.estimate(harmony_model_dir, 4096, eight_bit)

    needing = dataclasses.replace(plan, estimate=memory.MemoryEstimate(10 * GB, 8192 * 1_000_000, 0))
    assert needing.needed_bytes == 10 * GB + 8192 * 1_000_000 and needing.runs and not needing.fits  # the GPU gets 2/3
    assert dataclasses.replace(needing, estimate=memory.MemoryEstimate(10 * GB, 4096 * 1_000_000, 0)).fits


def test_manual_options_win_else_what_fits_else_the_defaults():
    config, ram = HUNDRED_TWENTY.config, 64 * GIB
    manual = LoadOptions(embedding="resident")
    chosen = plan_load(config, 8192, manual, name="120b", total_ram=ram)
    assert chosen.options == manual and not chosen.automatic
    fitted = plan_load(config, None, None, name="120b", total_ram=ram)
    assert fitted.automatic and fitted.context_length == 4096
    assert fitted.options == memory.fitting_options(config, 4096, memory.usable_memory_bytes(ram)) != LoadOptions()
    nothing_fits = plan_load(config, 131072, None, name="120b", total_ram=4 * GIB)
    assert memory.fitting_options(config, 131072, memory.usable_memory_bytes(4 * GIB)) is None
    assert nothing_fits.options == LoadOptions() and not nothing_fits.runs


def test_the_memory_summary_names_only_what_a_load_gives_up():
    assert memory_summary(LoadOptions()) == memory_summary(LoadOptions(embedding="resident")) == ""
    assert memory_summary(LoadOptions(dense_bits=8, expert_budget_bytes=int(8.5 * GIB))) == (
        "8-bit attention and unembedding, experts paged, 8.5 GiB in memory"
    )
