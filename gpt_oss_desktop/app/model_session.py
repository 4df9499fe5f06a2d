"""The model, apart from the chat: which one is loaded, loading it with the memory options the
fit check (run off the GUI thread) picked, and the engine's measures (context used, memory in
use, expert paging).

It lives on the GUI thread beside `ChatSession`, talks to the engine only through `EngineHost`,
and tells the window what changed with signals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gpt_oss_desktop.mlx_model import (
    Chat,
    ExpertPaging,
    HubError,
    LoadOptions,
    LoadPlan,
    ModelInfo,
    NotDownloadedError,
    is_hub_id,
    plan_load,
    resolve_model,
)

from .fit_check import FitCheck
from .settings import Key, Settings
from .worker import EngineHost

Planner = Callable[[Path, int | None, LoadOptions | None], LoadPlan]
"""`mlx_model.plan_load(folder, context_length, manual_options)`."""


def display_name(path_or_id: str) -> str:
    """`gpt-oss-20b` for a Hub id, the folder's name for a path."""
    return path_or_id.rstrip("/").split("/")[-1] if is_hub_id(path_or_id) else Path(path_or_id).name


@dataclass(frozen=True)
class _Opening:
    request_id: int  # of its fit check
    path_or_id: str
    folder: Path
    context_length: int | None
    confirm: Callable[[LoadPlan], bool]


class ModelSession(QObject):
    model_loading = Signal(str, float)
    model_loaded = Signal(str)  # display name
    model_failed = Signal(str)
    plan_declined = Signal(object)  # the LoadPlan the user chose not to load
    context_measured = Signal(int, int)  # used, limit
    memory_measured = Signal(object)  # bytes
    paging_measured = Signal(object)  # mlx_model.ExpertPaging, or None when no expert is paged

    def __init__(self, settings: Settings, engine: EngineHost, *, models_dir: Path, plan: Planner = plan_load) -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine
        self.models_dir = models_dir
        self.plan = plan
        self.model_name: str | None = None
        self.model_ready = False
        self.kernel_warning: str | None = None  # see _on_loaded
        self.load_options = LoadOptions()  # of the model loaded last (or loading now)
        self.fit_check = FitCheck(self)
        self.fit_check.planned.connect(self._on_planned)
        self.fit_check.failed.connect(self._on_plan_failed)
        self._opening: _Opening | None = None  # the model whose fit check runs now
        worker = engine.worker
        worker.loading.connect(self.model_loading)
        worker.loaded.connect(self._on_loaded)
        worker.load_failed.connect(self._on_load_failed)
        worker.measured.connect(self._on_measured)

    @property
    def checking(self) -> bool:
        """Whether a model's fit check runs now (its load follows)."""
        return self._opening is not None

    def open_model(self, path_or_id: str, confirm: Callable[[LoadPlan], bool]) -> None:
        """Resolve a model and plan its load off the GUI thread, then load it on the engine
        thread with the memory options of Settings › Memory (automatic: the least lossy that
        fit). Raises `NotDownloadedError` for a Hub id that must be downloaded first; other
        problems are reported through `model_failed`. `confirm` is asked when the plan does not
        fit; `plan_declined` says when it said no. A later call supersedes one still checking."""
        try:
            folder = resolve_model(path_or_id, models_dir=self.models_dir)
        except NotDownloadedError:
            raise
        except HubError as error:
            self.model_failed.emit(str(error))
            return
        context_length, manual = self.settings.context_length(), self.settings.load_options()
        request = self.fit_check.request(lambda: self.plan(folder, context_length, manual), str(folder))
        self._opening = _Opening(request, path_or_id, folder, context_length, confirm)

    def _on_planned(self, request_id: int, plan: LoadPlan) -> None:
        opening = self._opening
        if opening is None or opening.request_id != request_id:
            return
        self._opening = None
        if not plan.fits and not opening.confirm(plan):
            self.plan_declined.emit(plan)
            return
        self.model_ready = False
        self.kernel_warning = None
        self.model_name = display_name(opening.path_or_id)
        self.load_options = plan.options
        self.settings.set_value(Key.MODEL, opening.path_or_id)
        self.model_loading.emit(f"Loading {self.model_name}…", 0.0)
        self.engine.load(str(opening.folder), opening.context_length, plan.options)

    def _on_plan_failed(self, request_id: int, message: str) -> None:
        if self._opening is not None and self._opening.request_id == request_id:
            self._opening = None
            self.model_failed.emit(message)

    def measure(self, chat: Chat) -> None:
        """How much of the context `chat` takes, and the memory in use (the engine ignores it
        until a model is loaded)."""
        self.engine.measure(chat)

    def _on_loaded(self, info: ModelInfo) -> None:
        self.model_ready = True
        # Custom kernels the load's self-check replaced by MLX's own ops, said in the status bar.
        self.kernel_warning = info.kernel_check.warning() if info.kernel_check else None
        self.model_loaded.emit(self.model_name or info.name)

    def _on_load_failed(self, message: str) -> None:
        self.model_ready = False
        self.model_failed.emit(message)

    def _on_measured(self, used: int, limit: int, memory: int, paging: ExpertPaging | None) -> None:
        self.context_measured.emit(used, limit)
        self.memory_measured.emit(memory)
        self.paging_measured.emit(paging)
