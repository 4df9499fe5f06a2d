"""Memory options from Settings to the engine: automatic mode loads with what mlx_model.plan_load
picks, manual mode with the chosen options, the fit check is the plan the load uses, and paged
experts show their hit rate.

The engine here is a small double that records how it was loaded; the real engine with paged
experts is in test_app_with_engine.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent

from gpt_oss_desktop.app.model_session import ModelSession
from gpt_oss_desktop.app.session import ChatSession
from gpt_oss_desktop.app.settings import Key
from gpt_oss_desktop.app.settings_dialog import SettingsDialog
from gpt_oss_desktop.app.window import MainWindow
from gpt_oss_desktop.app.worker import EngineApi, EngineHost, EngineWorker
from gpt_oss_desktop.mlx_model import GIB, ExpertPaging, LoadOptions, LoadPlan, MemoryEstimate, ModelInfo, plan_load

PAGED = LoadOptions(dense_bits=8, expert_budget_bytes=GIB)


@dataclass
class LoadedDouble:
    """What the worker asks of a loaded engine."""

    paging: ExpertPaging | None = None
    info: ModelInfo = field(default_factory=lambda: ModelInfo(name="double", path=Path("double"), num_layers=1, num_experts=1,
                                                          context_limit=4096, weights_bytes=0))

    def memory_in_use(self) -> int:
        return 1000

    def paging_stats(self) -> ExpertPaging | None:
        return self.paging

    def count_tokens(self, conversation) -> int:
        return 0

    def spill_prompt_caches(self, store) -> None:
        """The worker points the local server's caches at their folder (nothing is served here)."""

    def save_spilled_caches(self) -> int:
        return 0


class Recorder:
    """Calls to a function, then its answer."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.calls: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args + tuple(kwargs.values()))
        return self.answer(*args, **kwargs)


def automatic(options: LoadOptions):
    """A planner whose automatic mode picks `options`, as plan_load would on a smaller Mac."""

    def plan(folder: Path, context_length: int | None, manual: LoadOptions | None) -> LoadPlan:
        assert manual is None, "automatic mode is on"
        return dataclasses.replace(plan_load(folder, context_length, options), automatic=True)

    return Recorder(plan)


class Harness:
    def __init__(self, qtbot, store, settings, models_dir: Path, plan, paging) -> None:
        self.qtbot = qtbot
        self.loads: list[tuple[str, dict]] = []
        self.paging = paging  # what the next engine loaded reports

        def load(path, **arguments):
            self.loads.append((path, arguments))
            return LoadedDouble(self.paging)

        self.host = EngineHost(EngineWorker(api_factory=lambda: EngineApi(load, RuntimeError)))
        self.model = ModelSession(settings, self.host, models_dir=models_dir, plan=plan)
        self.session = ChatSession(store, settings, self.host, self.model)
        self.window: MainWindow | None = None

    def open(self, folder: Path, confirm=lambda verdict: pytest.fail(f"asked to confirm: {verdict.message}")) -> bool:
        with self.qtbot.waitSignal(self.model.model_loaded, timeout=10_000):
            self.model.open_model(str(folder), confirm)
        return self.model.model_ready

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

    def start(plan=None, paging: ExpertPaging | None = None) -> Harness:
        started.append(Harness(qtbot, store, settings, data_dir / "models", plan or Recorder(plan_load), paging))
        return started[-1]

    yield start
    for each in started:
        each.close()


def test_automatic_mode_loads_with_what_the_plan_picks(harness, harmony_model_dir):
    plan = automatic(PAGED)
    run = harness(plan=plan)
    assert run.open(harmony_model_dir)
    assert plan.calls == [(harmony_model_dir, None, None)], "automatic context and memory: the plan decides both"
    assert run.loaded_options() == [PAGED] and run.model.load_options == PAGED, "the load uses the plan's options"
    assert [arguments["context_length"] for _, arguments in run.loads] == [None]


def test_when_nothing_fits_automatic_mode_asks_first_and_loads_as_published(harness, qtbot, harmony_model_dir):
    plan = Recorder(lambda folder, context, manual: dataclasses.replace(
        plan_load(folder, context, manual), options=LoadOptions(), estimate=MemoryEstimate(10**15, 0, 0)))
    run = harness(plan=plan)
    asked: list[LoadPlan] = []
    with qtbot.waitSignal(run.model.plan_declined):
        run.model.open_model(str(harmony_model_dir), lambda verdict: asked.append(verdict) or False)
    assert len(asked) == 1 and not asked[0].runs and run.loads == []
    assert plan.calls == [(harmony_model_dir, None, None)] and asked[0].options == LoadOptions()

    assert run.open(harmony_model_dir, confirm=lambda verdict: True)
    assert run.loaded_options() == [LoadOptions()]


def test_manual_settings_reach_the_fit_check_and_the_engine(harness, settings, harmony_model_dir):
    settings.set_value(Key.MEMORY_MODE, "manual")
    settings.set_value(Key.EMBEDDING, "resident")
    settings.set_value(Key.DENSE_BITS, 4)
    settings.set_value(Key.EXPERT_BUDGET_GIB, 2.5)
    settings.set_value(Key.CONTEXT_LENGTH, 8192)
    chosen = LoadOptions(embedding="resident", dense_bits=4, expert_budget_bytes=int(2.5 * GIB))
    plan = Recorder(plan_load)
    run = harness(plan=plan)
    assert run.open(harmony_model_dir)
    assert plan.calls == [(harmony_model_dir, 8192, chosen)]
    assert [(arguments["context_length"], arguments["options"]) for _, arguments in run.loads] == [(8192, chosen)]


def open_window(run: Harness, settings, models_dir: Path, qtbot) -> MainWindow:
    run.window = MainWindow(run.session, settings, models_dir)
    qtbot.addWidget(run.window)
    return run.window


def test_paged_experts_show_their_hit_rate_and_the_model_what_it_gave_up(harness, settings, data_dir, qtbot,
                                                                          harmony_model_dir):
    run = harness(plan=automatic(PAGED), paging=ExpertPaging(hits=3, misses=1, bytes_read=4096))
    status = open_window(run, settings, data_dir / "models", qtbot).status
    assert status.paging.isHidden()
    with qtbot.waitSignal(run.model.paging_measured):
        run.window.open_model(str(harmony_model_dir))
    assert not status.paging.isHidden() and status.paging.text() == "Expert hit rate 75%"
    assert "Read from disk since the load: 4.1 KB (misses: 1)." in status.paging.toolTip()
    assert status.model.text() == f"{harmony_model_dir.name} · 8-bit attention and unembedding, experts paged, 1.0 GiB in memory"

    run.paging = None  # reloaded with every expert resident
    run.model.plan = automatic(LoadOptions())
    with qtbot.waitSignal(run.model.model_loaded):
        run.window.open_model(str(harmony_model_dir))
    assert status.model.text() == harmony_model_dir.name
    qtbot.waitUntil(status.paging.isHidden)  # once the new engine's figures arrive


def test_before_any_lookup_the_hit_rate_is_not_made_up(harness, settings, data_dir, qtbot, harmony_model_dir):
    run = harness(plan=automatic(PAGED), paging=ExpertPaging())
    status = open_window(run, settings, data_dir / "models", qtbot).status
    with qtbot.waitSignal(run.model.paging_measured):
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
    with qtbot.waitSignal(run.model.model_loaded):
        window.show_settings()
    assert run.loaded_options()[1:] == [LoadOptions(dense_bits=8)]

    monkeypatch.setattr(SettingsDialog, "exec", lambda dialog: dialog.accept() or True)
    window.show_settings()
    assert run.model.model_ready and not run.model.checking, "a reload would have started (its fit check, at once)"
