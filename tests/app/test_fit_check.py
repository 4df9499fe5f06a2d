"""Fit checks run off the GUI thread: opening a model, the Settings dialog's estimate and the
model dialog's offers all plan their loads (`mlx_model.plan_load`, which reads the shard headers
through `memory.checkpoint_tensors`) on another thread, and deliver the plan by signal."""

from __future__ import annotations

import threading

import pytest

from gpt_oss_desktop.app.fit_check import FitCheck
from gpt_oss_desktop.app.model_dialog import ModelDialog
from gpt_oss_desktop.app.settings import Key
from gpt_oss_desktop.app.settings_dialog import SettingsDialog
from gpt_oss_desktop.mlx_model import GIB, LoadPlan, memory, plan_load

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture
def header_reads(monkeypatch) -> list[tuple[bool, object]]:
    """Every plan's first step, checkpoint_tensors reading a folder's headers or sizing a config
    (later steps pass what it returned): on the GUI thread?, what."""
    reads: list[tuple[bool, object]] = []
    read = memory.checkpoint_tensors

    def recorded(source):
        if not isinstance(source, memory.CheckpointTensors):
            reads.append((threading.current_thread() is threading.main_thread(), source))
        return read(source)

    monkeypatch.setattr(memory, "checkpoint_tensors", recorded)
    return reads


def test_the_recorder_sees_a_plan_made_on_the_gui_thread(header_reads, harmony_model_dir):
    plan_load(harmony_model_dir)
    assert header_reads == [(True, harmony_model_dir)]


def test_the_gui_thread_never_plans_a_load(qtbot, window, settings, data_dir, header_reads, harmony_model_dir):
    with qtbot.waitSignal(window.model.model_loaded, timeout=LOAD_TIMEOUT_MS):
        window.open_model(str(harmony_model_dir))
    assert harmony_model_dir in [source for _, source in header_reads], "opening the model planned it"

    settings.set_value(Key.MODEL, str(harmony_model_dir))
    before = len(header_reads)
    dialog = SettingsDialog(settings, data_dir / "models")
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.estimating)
    assert dialog.memory_estimate.text().startswith(f"Automatic picks the weights as published for {harmony_model_dir.name}")
    assert len(header_reads) > before, "the estimate planned the folder"

    before = len(header_reads)
    models = ModelDialog(data_dir / "models", 16 * GIB)
    qtbot.addWidget(models)
    qtbot.waitUntil(lambda: not models.checking)
    assert all(card.verdict is not None for card in models.cards)
    assert len(header_reads) - before == len(models.cards), "each offer planned its published config"
    models.reject()

    assert not [source for on_gui_thread, source in header_reads if on_gui_thread]


def test_only_the_latest_request_is_answered_to_a_caller_that_asks_again(qtbot, harmony_model_dir):
    fit_check = FitCheck()
    answers: list[tuple[int, LoadPlan]] = []
    fit_check.planned.connect(lambda request_id, plan: answers.append((request_id, plan)))
    first = fit_check.request(lambda: plan_load(harmony_model_dir, 4096), "first")
    second = fit_check.request(lambda: plan_load(harmony_model_dir, 8192), "second")
    qtbot.waitUntil(lambda: len(answers) == 2)
    plans = dict(answers)
    assert (plans[first].context_length, plans[second].context_length) == (4096, 8192)


def test_a_folder_that_cannot_be_read_is_an_answer_naming_it(qtbot, tmp_path):
    fit_check = FitCheck()
    with qtbot.waitSignal(fit_check.failed) as failed:
        request = fit_check.request(lambda: plan_load(tmp_path / "missing"), str(tmp_path / "missing"))
    assert failed.args[0] == request and failed.args[1].startswith(f"Could not read {tmp_path / 'missing'}: ")
