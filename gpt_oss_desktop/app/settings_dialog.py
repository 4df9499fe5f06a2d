"""Settings (⌘,): the model, sampling, reply length, context length, developer instructions, how
the weights and the KV cache are held in memory (with the estimate of what the chosen model
needs), the disk the chats' saved prompt caches may take, the tools and the local server."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.mlx_model import (
    GIB,
    REASONING_LEVELS,
    HubError,
    LoadOptions,
    LoadPlan,
    format_bytes,
    plan_load,
    resolve_model,
)

from .chat_view import REASONING_LEVEL_NAMES
from .fit_check import FitCheck
from .local_server import LocalServer
from .model_session import display_name
from .server_settings import LocalServerGroup
from .settings import (
    DENSE_BIT_WIDTHS,
    EMBEDDING_PLACES,
    KV_BIT_WIDTHS,
    MEMORY_MODES,
    Key,
    Settings,
    manual_load_options,
)
from .tools_settings import ToolsSettings

CONTEXT_CHOICES = (0, 4096, 8192, 16384, 32768, 65536, 131072)
MEMORY_MODE_NAMES = {"automatic": "Automatic (fit this Mac)", "manual": "Manual"}
EMBEDDING_NAMES = {"mapped": "On disk, rows read when used", "resident": "In memory"}
DENSE_BITS_NAMES = {16: "16-bit (as published)", 8: "8-bit", 4: "4-bit"}
QUALITY_NOTE = (
    "Fewer bits change the answers: measured against 16-bit on random test models, 8-bit costs "
    "0.041 to 0.91 nats of KL divergence and 4-bit 0.51 to 1.44 (README: Memory)."
)
EXPERTS_NOTE = "Experts beyond this budget are read from disk when needed: the same answers, more slowly."
KV_BITS_NAMES = {16: "16-bit (as computed)", 8: "8-bit (about half the memory at long contexts)"}
KV_NOTE = ("An 8-bit KV cache lets a longer context fit; measured against 16-bit it costs about 0.001 nats of "
           "KL divergence at 8k and 32k positions (README: Memory). Automatic mode uses it only where it is "
           "the difference between fitting and not.")
CHAT_CACHE_NOTE = ("Each chat's prompt cache is saved here when you leave the chat or quit, so a long chat "
                   "reopened later answers without reading its history again; the least recently used go "
                   "first. 0 keeps none.")


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("SettingsNote")
    label.setWordWrap(True)
    return label


def _combo(names: dict) -> QComboBox:
    combo = QComboBox()
    for value, name in names.items():
        combo.addItem(name, value)
    return combo


def _context_label(tokens: int, needed_bytes: int | None = None) -> str:
    if not tokens:
        return "Automatic (what fits this Mac)"
    return f"{tokens:,} tokens" + (f" (needs {format_bytes(needed_bytes)})" if needed_bytes is not None else "")


def _longest_context_note(plan: LoadPlan) -> str:
    trained = plan.config.max_position_embeddings
    if plan.longest_context >= trained:
        return f" The model's whole {trained:,}-token context fits."
    if not plan.longest_context:
        return ""
    return (f" Up to {plan.longest_context:,} tokens of context fit; {trained:,} would need about "
            f"{format_bytes(plan.needed_bytes_at(trained))}.")


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, models_dir: Path, parent: QWidget | None = None,
                 local_server: LocalServer | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SettingsDialog")
        self.setWindowTitle("Settings")
        self.settings = settings
        self.models_dir = models_dir
        self.fit_check = FitCheck(self)
        self.fit_check.planned.connect(self._on_planned)
        self.fit_check.failed.connect(self._on_plan_failed)
        self._estimate_request: int | None = None  # the fit check the estimate waits for

        self.model = QLineEdit(settings.value(Key.MODEL))
        self.model.setPlaceholderText("openai/gpt-oss-20b or a model folder")
        browse = QPushButton("Choose Folder…")
        browse.clicked.connect(self._choose_folder)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(browse)

        self.context = QComboBox()
        for tokens in CONTEXT_CHOICES:
            self.context.addItem(_context_label(tokens), tokens)
        self.context.setCurrentIndex(max(0, self.context.findData(settings.value(Key.CONTEXT_LENGTH))))
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(settings.value(Key.TEMPERATURE))
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.01, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(settings.value(Key.TOP_P))
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(16, 131072)
        self.max_tokens.setSingleStep(256)
        self.max_tokens.setValue(settings.value(Key.MAX_NEW_TOKENS))
        self.default_reasoning_level = QComboBox()
        for reasoning_level in REASONING_LEVELS:
            self.default_reasoning_level.addItem(REASONING_LEVEL_NAMES[reasoning_level], reasoning_level)
        self.default_reasoning_level.setCurrentIndex(REASONING_LEVELS.index(settings.default_reasoning_level()))
        self.instructions = QPlainTextEdit(settings.value(Key.DEVELOPER_INSTRUCTIONS))
        self.instructions.setPlaceholderText("For example: Answer concisely. Use British spelling.")
        self.instructions.setMinimumHeight(90)
        self.instructions.setTabChangesFocus(True)  # Tab moves on, as in every other field

        form = QFormLayout()
        form.addRow("Model:", model_row)
        form.addRow("Context length:", self.context)
        form.addRow("Temperature:", self.temperature)
        form.addRow("Top P:", self.top_p)
        form.addRow("Maximum tokens per reply:", self.max_tokens)
        form.addRow("Reasoning for new chats:", self.default_reasoning_level)
        form.addRow("Developer instructions:", self.instructions)
        note = _note(
            "Developer instructions apply to chats started from now on; each chat keeps the ones it began with. "
            "A new model, context length or memory setting takes effect when the model is loaded again: "
            "right after OK, unless a reply is being written."
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        page = QWidget()
        page.setObjectName("SettingsPage")
        fields = QVBoxLayout(page)
        fields.addLayout(form)
        fields.addWidget(self._memory_group())
        self.server_group = LocalServerGroup(settings, local_server) if local_server is not None else None
        if self.server_group is not None:
            fields.addWidget(self.server_group)
        fields.addWidget(note)
        self.tools = ToolsSettings(settings)
        fields.addWidget(self.tools)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("SettingsScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(page)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(buttons)
        for changed in (self.context.currentIndexChanged, self.memory_mode.currentIndexChanged,
                        self.embedding.currentIndexChanged, self.dense_bits.currentIndexChanged,
                        self.kv_bits.currentIndexChanged, self.expert_budget.valueChanged,
                        self.model.editingFinished):
            changed.connect(self._show_memory_estimate)
        self._show_memory_estimate()
        self._fit_to_screen(page)

    def _fit_to_screen(self, page: QWidget) -> None:
        """As tall as the fields need, but never taller than the screen: the rest scrolls."""
        screen = (self.parentWidget() or self).screen().availableGeometry()
        wanted = page.sizeHint().height() + 80
        self.resize(600, min(wanted, int(screen.height() * 0.85)))

    def _memory_group(self) -> QGroupBox:
        settings = self.settings
        self.memory_mode = _combo({mode: MEMORY_MODE_NAMES[mode] for mode in MEMORY_MODES})
        self.embedding = _combo({place: EMBEDDING_NAMES[place] for place in EMBEDDING_PLACES})
        self.dense_bits = _combo({bits: DENSE_BITS_NAMES[bits] for bits in DENSE_BIT_WIDTHS})
        self.kv_bits = _combo({bits: KV_BITS_NAMES[bits] for bits in KV_BIT_WIDTHS})
        for combo, key in ((self.memory_mode, Key.MEMORY_MODE), (self.embedding, Key.EMBEDDING),
                           (self.dense_bits, Key.DENSE_BITS), (self.kv_bits, Key.KV_BITS)):
            combo.setCurrentIndex(max(0, combo.findData(settings.value(key))))
        self.expert_budget = QDoubleSpinBox()
        self.expert_budget.setRange(0.0, 1024.0)
        self.expert_budget.setDecimals(1)
        self.expert_budget.setSingleStep(0.5)
        self.expert_budget.setSuffix(" GiB")
        self.expert_budget.setSpecialValueText("All in memory")  # shown at 0
        self.expert_budget.setValue(settings.value(Key.EXPERT_BUDGET_GIB))
        self.chat_cache_budget = QDoubleSpinBox()
        self.chat_cache_budget.setRange(0.0, 4096.0)
        self.chat_cache_budget.setDecimals(1)
        self.chat_cache_budget.setSingleStep(1.0)
        self.chat_cache_budget.setSuffix(" GiB")
        self.chat_cache_budget.setValue(settings.chat_cache_budget_bytes() / GIB)
        self.memory_estimate = _note("")
        self.memory_estimate.setObjectName("MemoryFit")
        self.manual_memory = (self.embedding, self.dense_bits, self.expert_budget, self.kv_bits)
        self.memory_mode.currentIndexChanged.connect(self._enable_manual_memory)
        self._enable_manual_memory()

        form = QFormLayout()
        form.addRow("Mode:", self.memory_mode)
        form.addRow("Embedding table:", self.embedding)
        form.addRow("Attention and unembedding:", self.dense_bits)
        form.addRow("", _note(QUALITY_NOTE))
        form.addRow("Experts in memory:", self.expert_budget)
        form.addRow("", _note(EXPERTS_NOTE))
        form.addRow("KV cache:", self.kv_bits)
        form.addRow("", _note(KV_NOTE))
        form.addRow("Saved chat caches on disk:", self.chat_cache_budget)
        form.addRow("", _note(CHAT_CACHE_NOTE))
        group = QGroupBox("Memory")
        group.setObjectName("MemorySettings")
        column = QVBoxLayout(group)
        column.addLayout(form)
        column.addWidget(self.memory_estimate)
        return group

    def _enable_manual_memory(self) -> None:
        manual = self.memory_mode.currentData() == "manual"
        for widget in self.manual_memory:
            widget.setEnabled(manual)

    def _manual_options(self) -> LoadOptions | None:
        """The options the manual fields describe; None in automatic mode."""
        if self.memory_mode.currentData() != "manual":
            return None
        return manual_load_options(self.embedding.currentData(), self.dense_bits.currentData(),
                                   self.expert_budget.value(), self.kv_bits.currentData())

    def _model_folder(self) -> Path | None:
        """The chosen model's folder when it is on this Mac (the estimate reads its shard headers)."""
        try:
            return resolve_model(self.model.text(), models_dir=self.models_dir)
        except HubError:
            return None

    @property
    def estimating(self) -> bool:
        """Whether the estimate waits for a fit check."""
        return self._estimate_request is not None

    def _show_memory_estimate(self) -> None:
        """What the chosen model needs with the chosen options, beside what this Mac's GPU can
        use. The fit check reads the shard headers off the GUI thread, on every change; the
        answer to the latest is shown."""
        folder = self._model_folder()
        if folder is None:
            self._estimate_request = None
            self.memory_estimate.setText("Choose a model folder or a downloaded model to see the memory it needs.")
            return
        name = display_name(self.model.text())
        context_length, manual = int(self.context.currentData()) or None, self._manual_options()
        self._estimate_request = self.fit_check.request(
            lambda: plan_load(folder, context_length, manual, name=name), str(folder))
        self.memory_estimate.setText(f"Checking the memory {name} needs…")

    def _on_plan_failed(self, request_id: int, message: str) -> None:
        if request_id == self._estimate_request:
            self._estimate_request = None
            self.memory_estimate.setText(message)

    def _on_planned(self, request_id: int, plan: LoadPlan) -> None:
        if request_id != self._estimate_request:
            return
        self._estimate_request = None
        name = plan.name
        chosen = (f"Automatic picks {plan.summary or 'the weights as published'} for {name}, which then"
                  if plan.automatic else f"With these settings {name}")
        automatic_context = " (automatic: the longest that fits)" if not int(self.context.currentData()) else ""
        self.memory_estimate.setText(
            f"{chosen} needs about {format_bytes(plan.engine_needed_bytes)} at {plan.engine_context_length:,} "
            f"tokens of context{automatic_context}. This Mac's GPU can use {format_bytes(plan.budget_bytes)}."
            f"{_longest_context_note(plan)}"
        )
        for index in range(self.context.count()):  # a length that does not fit says what it would take
            tokens = int(self.context.itemData(index))
            too_long = bool(tokens) and tokens > plan.longest_context
            self.context.setItemText(index, _context_label(tokens, plan.needed_bytes_at(tokens) if too_long else None))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a Model Folder")
        if folder:
            self.model.setText(folder)
            self._show_memory_estimate()

    def accept(self) -> None:
        problem = self.server_group.problem() if self.server_group is not None else None
        if problem:
            self.server_group.status.setText(problem)
            self.scroll.ensureWidgetVisible(self.server_group)
            return
        self.settings.set_value(Key.MODEL, self.model.text().strip())
        self.settings.set_value(Key.CONTEXT_LENGTH, int(self.context.currentData()))
        self.settings.set_value(Key.TEMPERATURE, self.temperature.value())
        self.settings.set_value(Key.TOP_P, self.top_p.value())
        self.settings.set_value(Key.MAX_NEW_TOKENS, self.max_tokens.value())
        self.settings.set_value(Key.DEFAULT_REASONING_LEVEL, self.default_reasoning_level.currentData())
        self.settings.set_value(Key.DEVELOPER_INSTRUCTIONS, self.instructions.toPlainText().strip())
        self.settings.set_value(Key.MEMORY_MODE, self.memory_mode.currentData())
        self.settings.set_value(Key.EMBEDDING, self.embedding.currentData())
        self.settings.set_value(Key.DENSE_BITS, self.dense_bits.currentData())
        self.settings.set_value(Key.EXPERT_BUDGET_GIB, self.expert_budget.value())
        self.settings.set_value(Key.KV_BITS, self.kv_bits.currentData())
        self.settings.set_value(Key.CHAT_CACHE_GIB, self.chat_cache_budget.value())
        self.tools.save()
        if self.server_group is not None:
            self.server_group.save()
        self.settings.sync()
        super().accept()
