"""The window's status bar: the model (and what its load gave up for memory), the last reply's
figures (time to first token, tokens per second), the context used of its limit, the memory in
use and, when experts are paged from disk, how often they were already in memory."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from gpt_oss_desktop.mlx_model import ExpertPaging, Stats, format_bytes

_EMPTY = "—"


def _label(name: str, tip: str) -> QLabel:
    label = QLabel(_EMPTY)
    label.setObjectName(name)
    label.setToolTip(tip)
    return label


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StatusBar")
        self.setSizeGripEnabled(False)
        self.model = _label("StatusModel", "The model in use")
        self.first_token = _label("StatusFirstToken", "Time to the first token of the last reply")
        self.speed = _label("StatusSpeed", "Generation speed of the last reply")
        self.context = _label("StatusContext", "Tokens this chat takes in the model's context, of its limit")
        self.memory = _label("StatusMemory", "Memory the model uses now")
        self.paging = _label("StatusPaging", "")
        self.paging.hide()
        self.progress = QProgressBar()
        self.progress.setObjectName("StatusProgress")
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(140)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.addWidget(self.model)
        self.addWidget(self.progress)
        for label in (self.first_token, self.speed, self.context, self.memory, self.paging):
            self.addPermanentWidget(label)

    def show_model(self, name: str | None, memory_summary: str = "", kernel_warning: str | None = None) -> None:
        """`memory_summary`: what the load gave up for memory (mlx_model.memory_summary), if anything;
        `kernel_warning`: the kernel self-check's (ModelInfo.kernel_check.warning()), if any."""
        self.progress.hide()
        flag = "⚠ some GPU kernels replaced by MLX ops" if kernel_warning else ""
        self.model.setText(" · ".join(part for part in (name or "No model loaded", memory_summary, flag) if part))
        self.model.setToolTip(kernel_warning or "")

    def show_loading(self, message: str, fraction: float) -> None:
        self.model.setText(message)
        self.progress.setValue(int(fraction * 1000))
        self.progress.show()

    def show_stats(self, stats: Stats) -> None:
        self.first_token.setText(f"First token {stats.ttft_s:.2f} s")
        self.speed.setText(f"{stats.tokens_per_s:.1f} tok/s")

    def show_context(self, used: int | None, limit: int | None) -> None:
        if used is None or not limit:
            self.context.setText(f"Context {_EMPTY}")
            return
        share = used / limit
        self.context.setText(f"Context {used:,} / {limit:,} ({share:.0%})")
        self.context.setProperty("severity", "warning" if share > 0.9 else "")
        self.context.style().polish(self.context)

    def show_memory(self, in_use: int | None) -> None:
        self.memory.setText(f"Memory {format_bytes(in_use)}" if in_use else f"Memory {_EMPTY}")

    def show_paging(self, stats: ExpertPaging | None) -> None:
        """The expert hit rate since the load; hidden when every expert is resident."""
        self.paging.setVisible(stats is not None)
        if stats is None:
            return
        lookups = stats.hits + stats.misses
        self.paging.setText(f"Expert hit rate {stats.hit_rate:.0%}" if lookups else f"Expert hit rate {_EMPTY}")
        self.paging.setToolTip(
            "Experts are paged from disk: the share of the experts used since the model loaded that were "
            f"already in memory. Read from disk since the load: {format_bytes(stats.bytes_read)} "
            f"(misses: {stats.misses:,})."
        )

    def clear_reply_figures(self) -> None:
        self.first_token.setText(_EMPTY)
        self.speed.setText(_EMPTY)
