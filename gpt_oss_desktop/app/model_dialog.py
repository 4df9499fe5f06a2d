"""Choosing a model: the first-run offer (20b, and 120b where the memory allows, each checked with
the options its load would use) with download sizes and free disk, a download with byte progress
that can be cancelled and resumed, or a model folder already on disk."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.mlx_model import (
    DownloadPlan,
    HubError,
    LoadOptions,
    LoadPlan,
    check_model_folder,
    format_bytes,
    free_disk_bytes,
    resolve_model,
)

from .download import DownloadHost
from .fit_check import FitCheck
from .models import CATALOGUE, ModelChoice, offer

_SPEED_SMOOTHING = 0.3


def _is_downloaded(choice: ModelChoice, models_dir: Path) -> bool:
    try:
        resolve_model(choice.repo_id, models_dir=models_dir)
    except HubError:
        return False
    return True


class ModelCard(QFrame):
    """One model: a radio button with what it is, what it costs, and whether this Mac runs it
    (`show_verdict`, once the fit check answers; until then it cannot be chosen)."""

    def __init__(self, choice: ModelChoice, downloaded: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelCard")
        self.choice = choice
        self.downloaded = downloaded
        self.verdict: LoadPlan | None = None
        self.radio = QRadioButton(choice.name)
        self.radio.setObjectName("ModelName")
        self.radio.setEnabled(False)
        description = QLabel(choice.description)
        description.setObjectName("ModelDescription")
        description.setWordWrap(True)
        self.facts = QLabel(f"{self._size()} · Checking whether this Mac runs it…")
        self.facts.setObjectName("ModelFacts")
        self.facts.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(2)
        layout.addWidget(self.radio)
        layout.addWidget(description)
        layout.addWidget(self.facts)

    @property
    def runs(self) -> bool:
        return self.verdict is not None and self.verdict.runs

    def _size(self) -> str:
        return "Downloaded" if self.downloaded else f"Download {format_bytes(self.choice.download_bytes)}"

    def show_verdict(self, verdict: LoadPlan) -> None:
        self.verdict = verdict
        self.radio.setEnabled(verdict.runs)
        self.facts.setText(f"{self._size()} · {verdict.message}")
        self.facts.setObjectName("ModelFacts" if verdict.runs else "ModelRefused")
        self.facts.style().polish(self.facts)


class ModelDialog(QDialog):
    """`context_length` and `manual` are Settings' (None: automatic), so a model is offered as
    its load would go."""

    def __init__(
        self,
        models_dir: Path,
        total_ram: int,
        *,
        context_length: int | None = None,
        manual: LoadOptions | None = None,
        first_run: bool = False,
        preselect: str | None = None,
        endpoint: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ModelDialog")
        self.setWindowTitle("Choose a Model")
        self.setModal(True)
        self.models_dir = models_dir
        self.chosen: str | None = None
        self._plan: DownloadPlan | None = None
        self._downloading = False
        self._speed = 0.0
        self._last_sample: tuple[float, int] | None = None
        self.downloads = DownloadHost(models_dir, endpoint)
        worker = self.downloads.worker
        worker.planned.connect(self._on_planned)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)

        heading = QLabel("Welcome to gpt-oss" if first_run else "Choose a model")
        heading.setObjectName("DialogHeading")
        intro = QLabel(
            "Models run entirely on this Mac. Download one once; after that no network is needed."
        )
        intro.setObjectName("DialogIntro")
        intro.setWordWrap(True)
        self.group = QButtonGroup(self)
        self.cards: list[ModelCard] = []
        self._preselect = preselect
        self.fit_check = FitCheck(self)
        self.fit_check.planned.connect(self._on_verdict)
        self.fit_check.failed.connect(self._on_verdict_failed)
        self._checks: dict[int, ModelCard] = {}  # fit checks not answered yet
        cards = QVBoxLayout()
        cards.setSpacing(8)
        for choice in CATALOGUE:
            card = ModelCard(choice, _is_downloaded(choice, models_dir))
            self.group.addButton(card.radio)
            self.cards.append(card)
            cards.addWidget(card)
            check = self.fit_check.request(
                lambda choice=choice: offer(choice, total_ram, context_length, manual), choice.name)
            self._checks[check] = card
        self.disk = QLabel(
            f"{format_bytes(free_disk_bytes(models_dir))} free on the disk that holds {models_dir}."
        )
        self.disk.setObjectName("DialogNote")
        self.disk.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("DownloadStatus")
        self.status.setWordWrap(True)
        self.status.hide()

        self.open_folder = QPushButton("Open Folder…")
        self.open_folder.clicked.connect(self._choose_folder)
        self.close_button = QPushButton("Cancel")
        self.close_button.clicked.connect(self.reject)
        self.primary = QPushButton()
        self.primary.setDefault(True)
        self.primary.clicked.connect(self._primary_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.primary)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 18)
        layout.setSpacing(10)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addLayout(cards)
        layout.addWidget(self.disk)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.setMinimumWidth(540)
        # Wrapped labels need their height for the dialog's width, which Qt's default sizing of a
        # top-level layout does not ask for: without this the cards' lines overlap and clip.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        for card in self.cards:
            card.radio.toggled.connect(self._update_buttons)
        self._update_buttons()

    @property
    def checking(self) -> bool:
        """Whether some model's fit check has not answered yet."""
        return bool(self._checks)

    def _on_verdict(self, request_id: int, verdict: LoadPlan) -> None:
        card = self._checks.pop(request_id, None)
        if card is None:
            return
        card.show_verdict(verdict)
        self._update_buttons()
        if not self._checks:
            self._choose_preferred()

    def _on_verdict_failed(self, request_id: int, message: str) -> None:
        card = self._checks.pop(request_id, None)
        if card is not None:
            self._show_status(message, error=True)
            if not self._checks:
                self._choose_preferred()

    def _choose_preferred(self) -> None:
        """Once every model is checked: the one asked for, else the first this Mac runs."""
        if self.selected() is not None:
            return
        enabled = [card for card in self.cards if card.radio.isEnabled()]
        preferred = next((c for c in enabled if c.choice.repo_id == self._preselect), enabled[0] if enabled else None)
        if preferred is not None:
            preferred.radio.setChecked(True)

    def selected(self) -> ModelCard | None:
        return next((card for card in self.cards if card.radio.isChecked()), None)

    # -- buttons -------------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        card = self.selected()
        if self._downloading:
            self.primary.setText("Cancel Download")
        elif card is None:
            self.primary.setText("Download")
        elif card.downloaded:
            self.primary.setText("Use This Model")
        else:
            self.primary.setText("Resume Download" if self._plan and self._plan.present_bytes else "Download")
        self.primary.setEnabled(card is not None)
        self.open_folder.setEnabled(not self._downloading)
        for each in self.cards:
            each.radio.setEnabled(each.runs and not self._downloading)

    def _primary_clicked(self) -> None:
        card = self.selected()
        if self._downloading:
            self.downloads.cancel()
            self._show_status("Stopping the download…")
            return
        if card is None:
            return
        if card.downloaded:
            self._choose(card.choice.repo_id)
            return
        self._downloading = True
        self._show_status(f"Checking the size of {card.choice.name}…")
        self._update_buttons()
        self.downloads.plan(card.choice.repo_id)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a Model Folder")
        if not folder:
            return
        try:
            check_model_folder(folder)
        except HubError as error:
            self._show_status(str(error), error=True)
            return
        self._choose(folder)

    def _choose(self, path_or_id: str) -> None:
        self.chosen = path_or_id
        self.accept()

    # -- the download --------------------------------------------------------------------------

    def _on_planned(self, plan: DownloadPlan) -> None:
        self._plan = plan
        if not plan.fits_on_disk:
            self._downloading = False
            self._show_status(
                f"{plan.repo_id} needs {format_bytes(plan.remaining_bytes)} more, but only "
                f"{format_bytes(plan.free_bytes)} is free on this disk. Free some space and try again.",
                error=True,
            )
            self._update_buttons()
            return
        self._last_sample = (time.monotonic(), plan.present_bytes)
        self._speed = 0.0
        self.progress.show()
        self._on_progress(plan.present_bytes, plan.total_bytes)
        self.downloads.download(plan)

    def _on_progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._last_sample is not None and now > self._last_sample[0]:
            rate = (done - self._last_sample[1]) / (now - self._last_sample[0])
            self._speed = rate if not self._speed else (1 - _SPEED_SMOOTHING) * self._speed + _SPEED_SMOOTHING * rate
        self._last_sample = (now, done)
        self.progress.setValue(int(1000 * done / total) if total else 0)
        text = f"{format_bytes(done)} of {format_bytes(total)}"
        if self._speed > 0:
            minutes = (total - done) / self._speed / 60
            text += f" · {format_bytes(self._speed)}/s · about {max(1, round(minutes))} min left"
        self._show_status(text)

    def _on_finished(self, folder: str) -> None:
        self._downloading = False
        card = self.selected()
        self._choose(card.choice.repo_id if card else folder)

    def _on_cancelled(self) -> None:
        self._downloading = False
        self._show_status("Download paused. What was downloaded is kept; Resume continues from there.")
        self._update_buttons()

    def _on_failed(self, message: str) -> None:
        self._downloading = False
        self._show_status(message, error=True)
        self._update_buttons()

    def _show_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setProperty("severity", "error" if error else "")
        self.status.style().polish(self.status)
        self.status.show()

    def done(self, result: int) -> None:
        """Closing stops a running download (what it fetched is kept) and the download thread."""
        self.downloads.shutdown()
        super().done(result)
