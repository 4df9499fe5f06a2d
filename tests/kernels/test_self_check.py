"""The kernels' self-check, with the emulator standing in for Metal: a deliberately broken
kernel fails, is replaced by its MLX twin, and the verdict is cached per machine and source."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from gpt_oss_desktop.metal.emulator import MetalKernel
from gpt_oss_desktop.mlx_model import cli
from gpt_oss_desktop.mlx_model import kernels as kernel_api
from gpt_oss_desktop.mlx_model.kernels import kernel_check, metal_kernels, reference
from gpt_oss_desktop.mlx_model.kernels.metal_kernels import MetalKernels, _read

# Wrong numbers (the bias subtracted) and a kernel that does not compile.
BREAKS = {
    "moe_down_accumulate.metal": ("static_cast<OutT>(total + weighted_bias[r])",
                                  "static_cast<OutT>(total - weighted_bias[r])"),
    "attention_prefill.metal": ("float row_sum = 1.0f;", "float row_sum = 1.0f"),
}
# attention_prefill.metal is the body of both its 16-bit and 8-bit KV variants: both fail.
BROKEN = {"moe_decode", "attention_prefill", "attention_prefill_kv8"}


def broken_source(file: str) -> str:
    text = _read(file)
    if file in BREAKS:
        old, new = BREAKS[file]
        assert old in text, f"{file} changed: update BREAKS"
        text = text.replace(old, new)
    return text


@pytest.fixture
def on_a_mac(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Metal backend's identity without a Mac (the emulator runs the kernels)."""
    monkeypatch.setattr(kernel_check, "machine", lambda backend: ("macOS 15.1", "Apple M2 Pro"))


def test_a_broken_kernel_fails_and_its_twin_takes_over(
    tmp_path: Path, on_a_mac: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cost model never groups experts this small (dispatches outweigh their bytes): group
    # from 32 tokens so that `moe` reaches the grouped kernels below.
    monkeypatch.setattr(metal_kernels, "grouped_min_tokens", lambda shape, gpu: 32)
    cache = tmp_path / "kernel-check.json"
    kernels = MetalKernels(MetalKernel, read_source=broken_source)
    check = kernel_api.self_check("metal", kernels=kernels, cache=cache)
    verdicts = {v.kernel: v for v in check.verdicts}
    assert set(verdicts) == set(kernel_check.CHECKED_KERNELS)
    assert not check.cached and set(check.replaced) == BROKEN
    assert "differs from its MLX twin" in verdicts["moe_decode"].error
    assert "MetalCompileError" in verdicts["attention_prefill"].error
    assert verdicts["moe_grouped"].passed and verdicts["attention_decode"].passed
    assert verdicts["attention_decode_kv8"].passed
    assert "moe_decode" in check.warning() and "attention_prefill" in check.warning()
    assert kernels.replaced == frozenset(check.replaced)

    # The entry points the model calls now give the twins' answers for those two.
    args, swiglu = kernel_check._moe_case(1)(np.random.default_rng(1))  # one token: moe_decode
    np.testing.assert_array_equal(np.array(kernels.moe(*args, **swiglu)), np.array(reference.moe(*args, **swiglu)))
    args, options = kernel_check._attention_case(12, 20, 8)(np.random.default_rng(1))
    np.testing.assert_array_equal(np.array(kernels.attention(*args, **options)),
                                  np.array(reference.attention(*args, **options)))
    # ... and the kernels that passed still run.
    args, swiglu = kernel_check._moe_case(40)(np.random.default_rng(2))
    assert not mx.array_equal(kernels.moe(*args, **swiglu), reference.moe(*args, **swiglu))

    stored = json.loads(cache.read_text())
    assert list(stored) == [check.key] and "Apple M2 Pro" in check.key and "macOS 15.1" in check.key


def test_the_verdict_is_cached_per_machine_and_kernel_source(
    tmp_path: Path, on_a_mac: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "kernel-check.json"
    first = kernel_api.self_check("metal", kernels=MetalKernels(MetalKernel, read_source=broken_source), cache=cache)

    def no_kernels(**_):
        raise AssertionError("a cached verdict must not run the kernels")

    again = MetalKernels(no_kernels, read_source=broken_source)
    second = kernel_api.self_check("metal", kernels=again, cache=cache)
    assert second.cached and second.verdicts == first.verdicts and again.replaced == frozenset(first.replaced)

    # Another GPU, or fixed sources, check again.
    monkeypatch.setattr(kernel_check, "machine", lambda backend: ("macOS 15.1", "Apple M4 Max"))
    third = kernel_api.self_check("metal", kernels=MetalKernels(MetalKernel, read_source=broken_source), cache=cache)
    assert not third.cached
    fixed = MetalKernels(MetalKernel)
    fourth = kernel_api.self_check("metal", kernels=fixed, cache=cache)
    assert not fourth.cached and fourth.replaced == () and fourth.warning() is None and fixed.replaced == frozenset()
    assert len(json.loads(cache.read_text())) == 3


def test_check_kernels_prints_a_line_per_kernel_and_exits_non_zero_on_a_failure(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    assert cli.main(["--check-kernels"], stdout=out) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [[name, "pass"] for name in kernel_check.CHECKED_KERNELS]
    assert all("max error" in line and "twin" in line for line in lines)

    monkeypatch.setattr(cli, "check_kernels",
                        lambda: kernel_check.run_checks(MetalKernels(MetalKernel, read_source=broken_source)))
    out = io.StringIO()
    assert cli.main(["--check-kernels"], stdout=out) == 1
    assert "moe_decode         FAIL" in out.getvalue() and "attention_prefill  FAIL" in out.getvalue()


def test_the_reference_backend_has_nothing_to_check(tmp_path: Path) -> None:
    assert kernel_api.self_check("reference", cache=tmp_path / "c.json") is None
    assert not (tmp_path / "c.json").exists()


def test_the_load_runs_the_check_and_reports_replaced_kernels(
    harmony_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Engine.load on the custom kernels (the emulator, as Metal cannot run here) checks them
    first: ModelInfo.kernel_check says which were replaced, and the data folder keeps it."""
    from gpt_oss_desktop.mlx_model import DATA_DIR_ENV, Engine

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("GPT_OSS_KERNELS", "emulator")
    broken = MetalKernels(MetalKernel, read_source=broken_source)
    monkeypatch.setattr(kernel_api, "_custom_kernels", lambda backend: broken)
    engine = Engine.load(harmony_model_dir, context_length=256, dtype=mx.float32)
    check = engine.info.kernel_check
    assert check is not None and set(check.replaced) == BROKEN
    assert broken.replaced == frozenset(check.replaced)
    assert check.key in json.loads((tmp_path / kernel_check.CACHE_FILE).read_text())


def test_a_twin_that_raises_is_a_recorded_failure_not_a_failed_load(
    tmp_path: Path, on_a_mac: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MLX twin that throws (say, an MLX without an op it needs) cannot judge its kernel: the
    check records the failure naming the twin, keeps that kernel (its twin could not stand in
    for it), and still checks and replaces the others."""

    def moe_twin_without_mxfp4(*args, **kwargs):
        raise ValueError("[gather_qmm] mode mxfp4 is not supported")

    checks = tuple(
        dataclasses.replace(check, twin=moe_twin_without_mxfp4) if check.name == "moe_grouped" else check
        for check in kernel_check.CHECKS
    )
    monkeypatch.setattr(kernel_check, "CHECKS", checks)
    monkeypatch.setattr(metal_kernels, "grouped_min_tokens", lambda shape, gpu: 32)  # as above
    kernels = MetalKernels(MetalKernel, read_source=broken_source)
    check = kernel_api.self_check("metal", kernels=kernels, cache=tmp_path / "kernel-check.json")

    verdict = {v.kernel: v for v in check.verdicts}["moe_grouped"]
    assert not verdict.passed and verdict.twin_failed
    assert verdict.error == (
        "its MLX twin test_self_check.moe_twin_without_mxfp4 raised ValueError: "
        "[gather_qmm] mode mxfp4 is not supported"
    )
    assert "FAIL" in verdict.line() and "moe_twin_without_mxfp4 raised ValueError" in verdict.line()
    assert check.unchecked == ("moe_grouped",)
    assert set(check.replaced) == BROKEN == set(kernels.replaced)
    assert "moe_grouped could not be checked (its MLX twin" in check.warning()
    assert "failed for moe_decode, attention_prefill" in check.warning()

    # The kernel whose twin is broken keeps running; cached, the verdict says the same.
    args, swiglu = kernel_check._moe_case(40)(np.random.default_rng(2))
    assert np.isfinite(np.array(kernels.moe(*args, **swiglu))).all()
    again = kernel_api.self_check("metal", kernels=MetalKernels(MetalKernel, read_source=broken_source),
                                  cache=tmp_path / "kernel-check.json")
    assert again.cached and again.unchecked == ("moe_grouped",) and again.replaced == check.replaced


def test_a_grouped_gemm_that_skips_a_simdgroup_with_pairs_fails_the_check(on_a_mac: None) -> None:
    """The moe_grouped check routes about 20 pairs to each expert, so its tiles have partly
    empty SIMD-groups: a kernel that skips one SIMD-group too many is caught."""
    skip_one_more = ("position, 8 * simdgroup < tile.rows, acc);", "position, 8 * simdgroup + 8 < tile.rows, acc);")

    def source(file: str) -> str:
        text = _read(file)
        if file == "moe_grouped_down.metal":
            assert skip_one_more[0] in text, f"{file} changed: update the test"
            text = text.replace(*skip_one_more)
        return text

    verdicts = {v.kernel: v for v in kernel_check.run_checks(MetalKernels(MetalKernel, read_source=source))}
    assert not verdicts["moe_grouped"].passed
    assert verdicts["moe_decode"].passed
