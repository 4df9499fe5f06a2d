"""`gpt-oss-serve`'s memory flags reach the engine: `--kv-bits 8` gives the full-attention layers
an 8-bit cache, `--fit` picks fitting options that keep a chosen KV width, and the cache folder
flags turn the disk cache on and off."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gpt_oss_desktop.mlx_model.cache import FullCache
from gpt_oss_desktop.mlx_model.server import cli


def engine_for(model: Path, *flags: str):
    args = cli.parse_arguments(["--model", str(model), "--context", "1024", *flags])
    return cli.load_engine(model, cli.load_options(model, args, io.StringIO()), args)


@pytest.mark.parametrize(("flags", "bits"), [((), 16), (("--kv-bits", "8"), 8), (("--fit", "--kv-bits", "8"), 8),
                                             (("--fit",), 16)])
def test_the_kv_width_reaches_the_full_attention_caches(harmony_model_dir, tmp_path, flags, bits):
    engine = engine_for(harmony_model_dir, "--cache-dir", str(tmp_path), *flags)
    full = [layer for layer in engine.cache.layers if isinstance(layer, FullCache)]
    assert full and {layer.bits for layer in full} == {bits}
    assert engine.spilled is not None and engine.spilled.store.folder == tmp_path


def test_no_disk_budget_keeps_no_cache_files(harmony_model_dir):
    assert engine_for(harmony_model_dir, "--cache-disk-gib", "0").spilled is None


def test_a_negative_disk_budget_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.parse_arguments(["--model", "m", "--cache-disk-gib", "-1"])
    assert "--cache-disk-gib takes 0 or more GiB" in capsys.readouterr().err
