"""bench/metal_projection.py against gpt_oss_desktop/metal/README.md: the README's projected
figures are the script's output, so neither changes without the other."""

from __future__ import annotations

from pathlib import Path

from support.bench_script import load_bench_script

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "gpt_oss_desktop" / "metal" / "README.md"
BEGIN, END = "<!-- metal_projection.py: begin -->\n", "<!-- metal_projection.py: end -->"


projection = load_bench_script("metal_projection")


def test_the_readme_shows_what_the_script_computes() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    assert block == projection.render(), "run `python bench/metal_projection.py` and paste its output"
    assert "PROJECTED" in block


def test_decode_is_the_roofline_arithmetic_the_readme_states() -> None:
    """20b, bfloat16 dense layers, M2 Pro: 2.44 GB dense + 1.27 GB experts + 0.10 GB of KV
    cache at 4096 tokens, at 200 GB/s."""
    config = projection.MODELS["20b"]
    m2_pro = next(gpu for gpu in projection.moe_cost.GPUS if gpu.name.startswith("M2 Pro"))
    assert round(projection.dense_weights(config) * 2 / 1e9, 2) == 2.44
    roofline = 1 / projection.decode_seconds(config, m2_pro, "bf16", 1.0)
    assert 51 < roofline < 53


def test_prefill_attention_visits_whole_key_tiles_within_the_window() -> None:
    config = projection.MODELS["20b"]
    # 4 queries a threadgroup: the first sees 4 keys in 1 tile of 32.
    assert projection.prefill_keys(config, 4, None) == 32
    # A long prompt's sliding layers visit 5 tiles (160 keys) per 4 queries.
    assert abs(projection.prefill_keys(config, 4096, 128) - 160) < 3
    assert projection.prefill_keys(config, 2048, None) > 1000
