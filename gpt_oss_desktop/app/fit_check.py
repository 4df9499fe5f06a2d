"""Fit checks off the GUI thread: `mlx_model.plan_load` reads a folder's shard headers (and a
slow or network disk can take its time), so the app asks for a plan here and gets the
`LoadPlan` back by signal.

A check runs on Qt's thread pool; its answer is relayed through this object, which lives on the
GUI thread, so `planned` and `failed` are always emitted there. Each request has an id: a caller
that asks again (the user changed a setting) keeps only the answer to its latest request.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from gpt_oss_desktop.mlx_model import LoadPlan


class FitCheck(QObject):
    planned = Signal(int, object)  # request id, mlx_model.LoadPlan
    failed = Signal(int, str)  # request id, what could not be read

    _answered = Signal(int, object)  # from the pool thread: request id, LoadPlan or the message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._answered.connect(self._deliver)

    def request(self, plan: Callable[[], LoadPlan], about: str) -> int:
        """Run `plan` (a call of `plan_load`) off the GUI thread; `about` names what it reads,
        for the message when that fails. Returns the request's id."""
        request_id = next(self._ids)

        def run() -> None:
            try:
                answer: LoadPlan | str = plan()
            except Exception as error:  # any failure is an answer, or the caller would wait forever
                answer = f"Could not read {about}: {error}"
            self._answered.emit(request_id, answer)

        QThreadPool.globalInstance().start(run)
        return request_id

    @Slot(int, object)
    def _deliver(self, request_id: int, answer: LoadPlan | str) -> None:
        if isinstance(answer, str):
            self.failed.emit(request_id, answer)
        else:
            self.planned.emit(request_id, answer)
