"""Memory options from Settings to the engine: automatic mode loads with what
mlx_model.memory.fitting_options picks, manual mode with the chosen options, the fit check
estimates with the same options the load uses, and paged experts show their hit rate.

The engine here is a small double that records how it was loaded; the real engine with paged
experts is in test_app_with_engine.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QCoreApplication, QEvent

from app.models import FitVerdict
from app.session import ChatSession
from app.settings import Key
from app.settings_dialog import SettingsDialog
from app.window import MainWindow
from app.worker import EngineApi, EngineHost, EngineWorker
from mlx_model import memory
from mlx_model.loader import LoadOptions
from mlx_model.memory import GIB
from mlx_model.offload import PagingStats

PAGED = LoadOptions(dense_bits=8, expert_budget_bytes=GIB)


@dataclass
class LoadedDouble:
    """What the worker asks of a loaded engine."""

    paging: PagingStats | None = None
    info: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(name="double", context_limit=4096))

    def memory_in_use(self) -> int:
        return 1000

    def paging_stats(self) -> PagingStats | None:
        return self.paging

    def count_tokens(self, conversation) -> int:
        return 0


class Recorder:
    """Calls to a function, then its answer."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.calls: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args + tuple(kwargs.values()))
        return self.answer(*args, **kwargs)


class Harness:
    def __init__(self, qtbot, store, settings, models_dir: Path, fit, estimate, paging) -> None:
        self.qtbot = qtbot
        self.loads: list[tuple[str, dict]] = []
        self.paging = paging  # what the next engine loaded reports

        def load(path, **arguments):
            self.loads.append((path, arguments))
            return LoadedDouble(self.paging)

        self.host = EngineHost(EngineWorker(api_factory=lambda: EngineApi(load, dict, dict, RuntimeError)))
        self.session = ChatSession(store, settings, self.host, models_dir=models_dir, estimate=estimate, fit=fit)
        self.window: MainWindow | None = None

    def open(self, folder: Path, confirm=lambda verdict: pytest.fail(f"asked to confirm: {verdict.message}")) -> bool:
        with self.qtbot.waitSignal(self.session.model_loaded, timeout=10_000):
            opened = self.session.open_model(str(folder), confirm)
        return opened

    def loaded_options(self) -> list[LoadOptions]:
        return [arguments["options"] for _, arguments in self.loads]

    def close(self) -> None:
        assert self.host.shutdown()
        if self.window is not None:
            self.window.deleteLater()
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def harness(qtbot, store, settings, data_dir):
    started: list[Harness] = []

    def start(fit=None, estimate=None, paging: PagingStats | None = None) -> Harness:
        started.append(Harness(qtbot, store, settings, data_dir / "models", fit or Recorder(memory.fitting_options),
                               estimate or Recorder(memory.estimate), paging))
        return started[-1]

    yield start
    for each in started:
        each.close()


def test_automatic_mode_loads_with_what_fitting_options_picks(harness, harmony_model_dir):
    fit, estimate = Recorder(lambda folder, context: PAGED), Recorder(memory.estimate)
    run = harness(fit=fit, estimate=estimate)
    assert run.open(harmony_model_dir)
    assert fit.calls == [(harmony_model_dir, 4096)], "automatic context: checked at the smallest the engine picks"
    assert estimate.calls == [(harmony_model_dir, 4096, PAGED)], "the fit check uses the options of the load"
    assert run.loaded_options() == [PAGED] and run.session.load_options == PAGED


def test_when_nothing_fits_automatic_mode_asks_first_and_loads_as_published(harness, harmony_model_dir):
    estimate = Recorder(lambda folder, context, options: memory.MemoryEstimate(10**15, 0, 0))
    run = harness(fit=Recorder(lambda folder, context: None), estimate=estimate)
    asked: list[FitVerdict] = []
    assert not run.session.open_model(str(harmony_model_dir), lambda verdict: asked.append(verdict) or False)
    assert len(asked) == 1 and not asked[0].runs and run.loads == []
    assert estimate.calls == [(harmony_model_dir, 4096, LoadOptions())]

    assert run.open(harmony_model_dir, confirm=lambda verdict: True)
    assert run.loaded_options() == [LoadOptions()]


def test_manual_settings_reach_the_fit_check_and_the_engine(harness, settings, harmony_model_dir):
    settings.set_value(Key.MEMORY_MODE, "manual")
    settings.set_value(Key.EMBEDDING, "resident")
    settings.set_value(Key.DENSE_BITS, 4)
    settings.set_value(Key.EXPERT_BUDGET_GIB, 2.5)
    settings.set_value(Key.CONTEXT_LENGTH, 8192)
    chosen = LoadOptions(embedding="resident", dense_bits=4, expert_budget_bytes=int(2.5 * GIB))
    fit, estimate = Recorder(lambda folder, context: pytest.fail("automatic mode is off")), Recorder(memory.estimate)
    run = harness(fit=fit, estimate=estimate)
    assert run.open(harmony_model_dir)
    assert fit.calls == [] and estimate.calls == [(harmony_model_dir, 8192, chosen)]
    assert [(arguments["context_length"], arguments["options"]) for _, arguments in run.loads] == [(8192, chosen)]


def open_window(run: Harness, settings, models_dir: Path, qtbot) -> MainWindow:
    run.window = MainWindow(run.session, settings, models_dir)
    qtbot.addWidget(run.window)
    return run.window


def test_paged_experts_show_their_hit_rate_and_the_model_what_it_gave_up(harness, settings, data_dir, qtbot,
                                                                          harmony_model_dir):
    run = harness(fit=Recorder(lambda folder, context: PAGED), paging=PagingStats(hits=3, misses=1, bytes_read=4096))
    status = open_window(run, settings, data_dir / "models", qtbot).status
    assert status.paging.isHidden()
    with qtbot.waitSignal(run.session.paging_measured):
        run.window.open_model(str(harmony_model_dir))
    assert not status.paging.isHidden() and status.paging.text() == "Expert hit rate 75%"
    assert "Read from disk since the load: 4.1 KB (misses: 1)." in status.paging.toolTip()
    assert status.model.text() == f"{harmony_model_dir.name} · 8-bit attention and unembedding, experts paged, 1.0 GiB in memory"

    run.paging = None  # reloaded with every expert resident
    run.session.fit = Recorder(lambda folder, context: LoadOptions())
    with qtbot.waitSignal(run.session.model_loaded):
        run.window.open_model(str(harmony_model_dir))
    assert status.model.text() == harmony_model_dir.name
    qtbot.waitUntil(status.paging.isHidden)  # once the new engine's figures arrive


def test_before_any_lookup_the_hit_rate_is_not_made_up(harness, settings, data_dir, qtbot, harmony_model_dir):
    run = harness(fit=Recorder(lambda folder, context: PAGED), paging=PagingStats())
    status = open_window(run, settings, data_dir / "models", qtbot).status
    with qtbot.waitSignal(run.session.paging_measured):
        run.window.open_model(str(harmony_model_dir))
    assert status.paging.text() == "Expert hit rate —"


def test_changing_a_memory_setting_reloads_the_model_and_an_unchanged_dialog_does_not(
    harness, settings, data_dir, qtbot, harmony_model_dir, monkeypatch
):
    run = harness()
    window = open_window(run, settings, data_dir / "models", qtbot)
    assert run.open(harmony_model_dir)

    def choose_8_bit(dialog: SettingsDialog) -> bool:
        dialog.memory_mode.setCurrentIndex(dialog.memory_mode.findData("manual"))
        dialog.dense_bits.setCurrentIndex(dialog.dense_bits.findData(8))
        dialog.accept()
        return True

    monkeypatch.setattr(SettingsDialog, "exec", choose_8_bit)
    with qtbot.waitSignal(run.session.model_loaded):
        window.show_settings()
    assert run.loaded_options()[1:] == [LoadOptions(dense_bits=8)]

    monkeypatch.setattr(SettingsDialog, "exec", lambda dialog: dialog.accept() or True)
    window.show_settings()
    assert run.session.model_ready, "a reload would have started (open_model clears model_ready at once)"
