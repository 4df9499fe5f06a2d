"""Model downloads on their own thread (not the engine's, which may be busy replying), reported
with Qt signals; the Qt-free work is mlx_model's (`plan_download`, `download`)."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from gpt_oss_desktop import mlx_model

from .threads import start_in_thread, stop_thread


class DownloadWorker(QObject):
    planned = Signal(object)  # mlx_model.DownloadPlan
    progress = Signal(object, object)  # bytes on disk, bytes in all (Python ints: they pass 2 GiB)
    finished = Signal(str)  # the model folder
    cancelled = Signal()
    failed = Signal(str)

    def __init__(self, models_dir: Path, endpoint: str | None = None) -> None:
        super().__init__()
        self.models_dir = models_dir
        self.endpoint = endpoint
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Thread-safe; the transfer stops at its next chunk and keeps what it has."""
        self._cancel.set()

    def arm(self) -> None:
        """Thread-safe; called when a download is requested, so a cancel that comes before the
        transfer starts still counts."""
        self._cancel.clear()

    @Slot(str)
    def plan(self, repo_id: str) -> None:
        try:
            self.planned.emit(mlx_model.plan_download(repo_id, self.models_dir, endpoint=self.endpoint))
        except mlx_model.HubError as error:
            self.failed.emit(str(error))

    @Slot(object)
    def download(self, plan: mlx_model.DownloadPlan) -> None:
        try:
            folder = mlx_model.download(plan, progress=self.progress.emit, cancel=self._cancel, endpoint=self.endpoint)
        except mlx_model.DownloadCancelled:
            self.cancelled.emit()
        except mlx_model.HubError as error:
            self.failed.emit(str(error))
        else:
            self.finished.emit(str(folder))


class DownloadHost(QObject):
    _plan = Signal(str)
    _download = Signal(object)

    def __init__(self, models_dir: Path, endpoint: str | None = None) -> None:
        super().__init__()
        self.worker = DownloadWorker(models_dir, endpoint)
        self._plan.connect(self.worker.plan)
        self._download.connect(self.worker.download)
        self.thread = start_in_thread(self.worker, "download")

    def plan(self, repo_id: str) -> None:
        self._plan.emit(repo_id)

    def download(self, plan: mlx_model.DownloadPlan) -> None:
        self.worker.arm()
        self._download.emit(plan)

    def cancel(self) -> None:
        self.worker.cancel()

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        self.worker.cancel()
        return stop_thread(self.thread, timeout_ms)
