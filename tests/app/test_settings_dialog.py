"""The Settings dialog: the memory section's defaults, its round trip through the settings, and
the estimate it shows for the chosen model folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtTest import QTest

from gpt_oss_desktop.app.settings import Key
from gpt_oss_desktop.app.settings_dialog import SettingsDialog
from gpt_oss_desktop.mlx_model import Engine, format_bytes, memory
from gpt_oss_desktop.mlx_model.loader import LoadOptions
from gpt_oss_desktop.mlx_model.memory import GIB


@pytest.fixture
def open_dialog(qtbot, settings, data_dir):
    def open_() -> SettingsDialog:
        dialog = SettingsDialog(settings, data_dir / "models")
        qtbot.addWidget(dialog)
        qtbot.waitUntil(lambda: not dialog.estimating)  # the fit check answers from its thread
        return dialog

    return open_


def choose(combo, value) -> None:
    """Choose `value`, then wait for the estimate it asks for."""
    combo.setCurrentIndex(combo.findData(value))
    dialog = combo.window()
    for _ in range(1000):  # at most 5 s
        if not (isinstance(dialog, SettingsDialog) and dialog.estimating):
            return
        QTest.qWait(5)
    raise AssertionError("the estimate's fit check did not answer")


def test_memory_defaults_to_automatic_with_the_manual_fields_disabled(open_dialog):
    dialog = open_dialog()
    assert dialog.memory_mode.currentData() == "automatic"
    assert (dialog.embedding.currentData(), dialog.dense_bits.currentData()) == ("mapped", 16)
    assert dialog.expert_budget.value() == 0 and dialog.expert_budget.text() == "All in memory"
    assert dialog.kv_bits.currentData() == 16 and dialog.chat_cache_budget.value() == 4.0
    manual = (dialog.embedding, dialog.dense_bits, dialog.expert_budget, dialog.kv_bits)
    assert not any(widget.isEnabled() for widget in manual)
    choose(dialog.memory_mode, "manual")
    assert all(widget.isEnabled() for widget in manual)


def test_manual_memory_settings_round_trip(open_dialog, settings):
    dialog = open_dialog()
    choose(dialog.memory_mode, "manual")
    choose(dialog.embedding, "resident")
    choose(dialog.dense_bits, 4)
    choose(dialog.kv_bits, 8)
    dialog.expert_budget.setValue(3.5)
    dialog.chat_cache_budget.setValue(2.0)
    dialog.accept()

    keys = (Key.MEMORY_MODE, Key.EMBEDDING, Key.DENSE_BITS, Key.EXPERT_BUDGET_GIB, Key.KV_BITS, Key.CHAT_CACHE_GIB)
    assert [settings.value(key) for key in keys] == ["manual", "resident", 4, 3.5, 8, 2.0]
    assert settings.load_options() == LoadOptions(embedding="resident", dense_bits=4, expert_budget_bytes=int(3.5 * GIB),
                                                  kv_bits=8)
    assert settings.chat_cache_budget_bytes() == 2 * GIB
    again = open_dialog()
    assert (again.memory_mode.currentData(), again.embedding.currentData(), again.dense_bits.currentData(),
            again.expert_budget.value(), again.kv_bits.currentData()) == ("manual", "resident", 4, 3.5, 8)
    assert again.expert_budget.isEnabled()


def estimate_text(folder: Path, context: int, options: LoadOptions) -> str:
    return f"needs about {format_bytes(memory.estimate(folder, context, options).total_bytes)} at {context:,} tokens"


def test_the_estimate_follows_the_chosen_options_and_context(open_dialog, settings, harmony_model_dir):
    settings.set_value(Key.MODEL, str(harmony_model_dir))
    dialog = open_dialog()
    text = dialog.memory_estimate.text
    automatic = memory.fitting_options(harmony_model_dir, 4096)  # the tiny model fits any machine as published
    assert automatic == LoadOptions()
    assert text().startswith(f"Automatic picks the weights as published for {harmony_model_dir.name}, which then")
    loaded = Engine.load(harmony_model_dir, options=automatic).info.context_limit  # what the model will report
    assert estimate_text(harmony_model_dir, loaded, automatic) + " of context (automatic: the longest that fits)" in text()
    assert f"This Mac's GPU can use {format_bytes(memory.usable_memory_bytes())}." in text()

    choose(dialog.memory_mode, "manual")
    choose(dialog.dense_bits, 8)
    assert text().startswith(f"With these settings {harmony_model_dir.name} needs")
    eight_bit = memory.default_context_length(memory.checkpoint_tensors(harmony_model_dir).config,
                                              memory.resident_bytes(harmony_model_dir, LoadOptions(dense_bits=8)))
    assert estimate_text(harmony_model_dir, eight_bit, LoadOptions(dense_bits=8)) in text()
    choose(dialog.embedding, "resident")
    choose(dialog.context, 8192)
    assert estimate_text(harmony_model_dir, 8192, LoadOptions(embedding="resident", dense_bits=8)) in text()
    sixteen = text()
    choose(dialog.kv_bits, 8)
    assert estimate_text(harmony_model_dir, 8192, LoadOptions(embedding="resident", dense_bits=8, kv_bits=8)) in text()
    assert text() != sixteen, "an 8-bit KV cache needs less"


def test_without_a_model_on_this_mac_the_estimate_says_what_to_do(open_dialog, settings):
    settings.set_value(Key.MODEL, "openai/not-downloaded-here")
    assert open_dialog().memory_estimate.text().startswith("Choose a model folder or a downloaded model")


def test_context_lengths_that_do_not_fit_say_what_they_would_take(open_dialog, settings, tmp_path, monkeypatch,
                                                                 harmony_model_dir):
    """gpt-oss-20b (the real shapes, a sparse checkpoint) with its embedding resident on a 24 GB
    Mac: 65,536 tokens of context fit beside the weights, the trained 131,072 do not."""
    from gpt_oss_desktop.mlx_model.checkpoint_writer import write_sparse_checkpoint
    from gpt_oss_desktop.mlx_model.config import PUBLISHED

    config = PUBLISHED["openai/gpt-oss-20b"]
    folder = write_sparse_checkpoint(tmp_path / "gpt-oss-20b", config, shards=3)
    shutil.copy(harmony_model_dir / "tokenizer.json", folder)  # a model folder has its tokenizer
    monkeypatch.setattr(memory, "total_memory_bytes", lambda: 24 * GIB)
    settings.set_value(Key.MODEL, str(folder))
    dialog = open_dialog()
    choose(dialog.memory_mode, "manual")
    choose(dialog.embedding, "resident")
    options = LoadOptions(embedding="resident")
    weights, usable = memory.resident_bytes(folder, options), memory.usable_memory_bytes(24 * GIB)
    longest = memory.longest_context(config, weights, usable)
    assert 65536 <= longest < 131072
    needed = weights + memory.kv_bytes(config, 131072) + memory.RUNTIME_OVERHEAD_BYTES
    assert needed > usable
    assert (f"Up to {longest:,} tokens of context fit; 131,072 would need about {format_bytes(needed)}."
            in dialog.memory_estimate.text())
    labels = {dialog.context.itemData(i): dialog.context.itemText(i) for i in range(dialog.context.count())}
    assert labels[65536] == "65,536 tokens"
    assert labels[131072] == f"131,072 tokens (needs {format_bytes(needed)})"

    choose(dialog.embedding, "mapped")  # 1.16 GB less: now the whole trained context fits
    assert "The model's whole 131,072-token context fits." in dialog.memory_estimate.text()
    assert dialog.context.itemText(dialog.context.findData(131072)) == "131,072 tokens"
