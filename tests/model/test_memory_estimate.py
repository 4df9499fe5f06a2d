"""The memory estimate and the choice of load options, at the real 20b and 120b shapes (sparse
checkpoints: the Hub layout and file sizes, no data on disk) and against what a load holds."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import pytest

from gpt_oss_desktop.mlx_model import load, memory
from gpt_oss_desktop.mlx_model.checkpoint_writer import write_sparse_checkpoint
from gpt_oss_desktop.mlx_model.config import PUBLISHED
from gpt_oss_desktop.mlx_model.load_plan import plan_load
from gpt_oss_desktop.mlx_model.loader import LoadOptions

GIB = 1024**3
# The published checkpoints' total_size (model.safetensors.index.json): ../shared/reference.
PUBLISHED_BYTES = {"openai/gpt-oss-20b": 13_761_264_768, "openai/gpt-oss-120b": 65_248_815_744}
OPTIONS = [LoadOptions(embedding="resident"), LoadOptions(), LoadOptions(dense_bits=8),
           LoadOptions(dense_bits=4), LoadOptions(dense_bits=8, expert_budget_bytes=3 * GIB)]


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sparse")
    return {repo: write_sparse_checkpoint(root / repo.split("/")[1], config, shards=3)
            for repo, config in PUBLISHED.items()}


@pytest.mark.parametrize("repo", sorted(PUBLISHED))
def test_the_real_shapes_have_the_published_sizes(sparse: dict[str, Path], repo: str) -> None:
    assert memory.resident_bytes(sparse[repo], LoadOptions(embedding="resident")) == PUBLISHED_BYTES[repo]


@pytest.mark.parametrize("repo", sorted(PUBLISHED))
def test_a_config_alone_estimates_as_its_checkpoint_does(sparse: dict[str, Path], repo: str) -> None:
    for options in OPTIONS:
        assert memory.estimate(PUBLISHED[repo], 8192, options) == memory.estimate(sparse[repo], 8192, options)


def test_experts_are_what_a_budget_keeps_out() -> None:
    config = PUBLISHED["openai/gpt-oss-20b"]
    everything = memory.resident_bytes(config, LoadOptions())
    assert memory.experts_bytes(config) == everything - memory.resident_bytes(config, LoadOptions(expert_budget_bytes=1)) + 1
    assert round(memory.experts_bytes(config) / GIB, 2) == 9.47  # 4.25 bits a weight: ../shared/reference


def test_kv_at_8k_for_20b_is_192_mib_plus_the_windows() -> None:
    config = PUBLISHED["openai/gpt-oss-20b"]
    per_token_and_layer = 2 * 8 * 64 * 2  # keys and values, 8 KV heads of 64, bfloat16
    assert memory.kv_bytes(config, 8192) == 192 * 1024**2 + 12 * 128 * per_token_and_layer


def test_an_8_bit_kv_cache_counts_int8_values_and_a_float32_scale_per_head_and_token() -> None:
    config = PUBLISHED["openai/gpt-oss-20b"]
    windows = 12 * 128 * 2 * 8 * 64 * 2  # the sliding layers stay 16-bit
    assert memory.kv_bytes_per_token(config, kv_bits=8) == 12 * 2 * 8 * (64 + 4)  # 12.75 KiB, not 24
    assert memory.kv_bytes(config, 8192, kv_bits=8) == 12 * 2 * 8 * 68 * 8192 + windows
    assert memory.estimate(config, 8192, LoadOptions(kv_bits=8)).kv_bytes == memory.kv_bytes(config, 8192, 8)


def test_8_bit_kv_comes_in_only_where_it_is_the_difference_between_fitting_and_not() -> None:
    config = PUBLISHED["openai/gpt-oss-20b"]
    as_published = memory.estimate(config, 131072, LoadOptions()).total_bytes
    assert memory.fitting_options(config, 131072, as_published) == LoadOptions()
    assert memory.fitting_options(config, 131072, as_published - 1) == LoadOptions(kv_bits=8)
    eight_bit = memory.estimate(config, 131072, LoadOptions(kv_bits=8)).total_bytes
    paged = memory.fitting_options(config, 131072, eight_bit - 1)  # then paging, KV back at 16 bits
    assert paged.kv_bits == 16 and paged.expert_budget_bytes is not None
    plan = plan_load(config, 131072, LoadOptions(kv_bits=8), name="gpt-oss-20b", total_ram=128 * GIB)
    assert "an 8-bit KV cache" in plan.given_up and "an 8-bit KV cache" in plan.summary


def test_a_kv_width_the_user_chose_holds_for_every_step_of_the_fit() -> None:
    """`--fit --kv-bits 8|16`: the automatic choice keeps the width it was given."""
    config = PUBLISHED["openai/gpt-oss-20b"]
    as_published = memory.estimate(config, 131072, LoadOptions()).total_bytes
    assert memory.fitting_options(config, 131072, as_published, kv_bits=8) == LoadOptions(kv_bits=8)
    sixteen = memory.fitting_options(config, 131072, as_published - 1, kv_bits=16)
    assert sixteen.kv_bits == 16 and sixteen.expert_budget_bytes is not None  # paged rather than 8-bit KV
    eight_bit = memory.estimate(config, 131072, LoadOptions(kv_bits=8)).total_bytes
    paged = memory.fitting_options(config, 131072, eight_bit - 1, kv_bits=8)
    assert paged.kv_bits == 8 and paged.expert_budget_bytes is not None
    plan = plan_load(config, 131072, name="gpt-oss-20b", total_ram=128 * GIB, kv_bits=8)
    assert plan.automatic and plan.options == LoadOptions(kv_bits=8)


def test_a_plans_cost_at_other_contexts_counts_its_own_kv_width() -> None:
    config = PUBLISHED["openai/gpt-oss-20b"]
    for options in (LoadOptions(), LoadOptions(kv_bits=8)):
        plan = plan_load(config, 8192, options, name="gpt-oss-20b", total_ram=128 * GIB)
        assert plan.needed_bytes_at(131072) == memory.estimate(config, 131072, options).total_bytes
        assert plan.engine_needed_bytes == plan.needed_bytes == memory.estimate(config, 8192, options).total_bytes


def test_the_estimate_is_what_a_load_holds(tiny_checkpoint: Path) -> None:
    for options in OPTIONS[:4]:
        model = load(tiny_checkpoint, options=options)
        assert model.parameter_bytes() == memory.resident_bytes(tiny_checkpoint, options)
    paged = LoadOptions(dense_bits=8, expert_budget_bytes=2_000_000)
    model = load(tiny_checkpoint, options=paged)
    mx.eval(model(mx.arange(40)[None]))
    assert model.parameter_bytes() <= memory.resident_bytes(tiny_checkpoint, paged)


def usable(mac_gib: int) -> int:
    return memory.usable_memory_bytes(mac_gib * GIB)


@pytest.mark.parametrize("repo, mac_gib", [("openai/gpt-oss-20b", 24), ("openai/gpt-oss-20b", 64),
                                           ("openai/gpt-oss-120b", 96)])
def test_a_mac_with_room_gets_the_weights_as_published(repo: str, mac_gib: int) -> None:
    assert memory.fitting_options(PUBLISHED[repo], 8192, usable(mac_gib)) == LoadOptions()


@pytest.mark.parametrize("repo, mac_gib, least_resident", [("openai/gpt-oss-20b", 16, 0.8),
                                                           ("openai/gpt-oss-120b", 64, 0.7)])
def test_paging_experts_is_preferred_to_rounding_weights(repo: str, mac_gib: int, least_resident: float) -> None:
    """Paging is exact (only slower), 8-bit is not: a 16 GB Mac keeps 20b exact, a 64 GB one 120b."""
    config = PUBLISHED[repo]
    options = memory.fitting_options(config, 8192, usable(mac_gib))
    assert options.dense_bits == 16 and options.embedding == "mapped"
    assert options.expert_budget_bytes >= least_resident * memory.experts_bytes(config)
    assert memory.estimate(config, 8192, options).total_bytes <= usable(mac_gib)


def test_rounding_comes_in_only_when_paging_would_keep_under_half_the_experts() -> None:
    config = PUBLISHED["openai/gpt-oss-120b"]
    options = memory.fitting_options(config, 8192, usable(32))
    assert options.dense_bits == 8 and options.expert_budget_bytes < memory.experts_bytes(config) / 2
    assert memory.estimate(config, 8192, options).total_bytes <= usable(32)


def test_nothing_fits_when_not_even_one_token_of_experts_does() -> None:
    assert memory.fitting_options(PUBLISHED["openai/gpt-oss-120b"], 8192, usable(4)) is None


@pytest.mark.parametrize(("repo", "per_token_kib"), [("openai/gpt-oss-20b", 24), ("openai/gpt-oss-120b", 36)])
def test_a_token_of_context_costs_the_full_layers_keys_and_values(repo: str, per_token_kib: int) -> None:
    assert memory.kv_bytes_per_token(PUBLISHED[repo]) == per_token_kib * 1024


@pytest.mark.parametrize(("repo", "mac_gib", "expected"), [
    ("openai/gpt-oss-20b", 16, 4096),  # 10.7 GB usable: the weights alone leave no room, the fit check warns
    ("openai/gpt-oss-20b", 24, 131072),  # 16 GB usable: 12.8 GiB + 3 GiB of KV at 128k fits
    ("openai/gpt-oss-120b", 64, 4096),
    ("openai/gpt-oss-120b", 96, 131072),
])
def test_the_automatic_context_reaches_the_trained_length_where_its_cache_fits(
    repo: str, mac_gib: int, expected: int
) -> None:
    config = PUBLISHED[repo]
    weights = memory.resident_bytes(config, LoadOptions())
    assert memory.default_context_length(config, weights, memory.usable_memory_bytes(mac_gib * GIB)) == expected


def test_the_automatic_context_is_the_longest_whose_cache_fits() -> None:
    config = PUBLISHED["openai/gpt-oss-20b"]
    weights = memory.resident_bytes(config, LoadOptions())
    for context in (8192, 40960, 65536, 99328):  # beyond the old 32k cap too
        usable = weights + memory.RUNTIME_OVERHEAD_BYTES + memory.kv_bytes(config, context) + 1023
        assert memory.default_context_length(config, weights, usable) == context
        assert memory.default_context_length(config, weights, usable - 1024) == context - 1024
    assert memory.default_context_length(config, 0, 1 << 50) == config.max_position_embeddings
