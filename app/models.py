"""The models the app offers, what this Mac can run, and the memory check before a load.

Memory figures: the weights are the Hub checkpoints' safetensors sizes; the KV cache grows only
in the full-attention layers (half of them; the sliding layers keep 128 positions), at bf16.
What the GPU may use and the runtime overhead are mlx_model.memory's figures, the same the
engine uses to pick its context; a model that needs more than the GPU's share still runs, but
slowly, with the rest of the system swapped out. A model folder is checked with the memory
options it will be loaded with (`load_options_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlx_model.hub import format_bytes
from mlx_model.loader import LoadOptions
from mlx_model.memory import GIB, RUNTIME_OVERHEAD_BYTES, total_memory_bytes, usable_memory_bytes

GB = 1000**3
SMALLEST_CONTEXT = 4096
"""The context assumed when the setting is automatic: the engine never picks less."""
_SWAP_LIMIT = 0.9
"""Above this share of RAM a model would page constantly: refused unless the user insists."""


class MemoryEstimate(Protocol):
    weights_bytes: int
    kv_bytes: int

    @property
    def total_bytes(self) -> int: ...


EstimateFunction = Callable[[Path, int, LoadOptions], MemoryEstimate]
"""`mlx_model.memory.estimate(model_dir, context_length, options)`."""
FitFunction = Callable[[Path, int], LoadOptions | None]
"""`mlx_model.memory.fitting_options(model_dir, context_length)`."""


@dataclass(frozen=True)
class CatalogueEstimate:
    weights_bytes: int
    kv_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + RUNTIME_OVERHEAD_BYTES


@dataclass(frozen=True)
class ModelChoice:
    repo_id: str
    name: str
    description: str
    download_bytes: int
    weights_bytes: int
    kv_bytes_per_token: int

    def estimate(self, context_length: int | None) -> CatalogueEstimate:
        tokens = context_length or SMALLEST_CONTEXT
        return CatalogueEstimate(self.weights_bytes, self.kv_bytes_per_token * tokens)


CATALOGUE: tuple[ModelChoice, ...] = (
    ModelChoice(
        repo_id="openai/gpt-oss-20b",
        name="gpt-oss-20b",
        description="21B parameters, 3.6B active. Fast; for Macs with 16 GB or more.",
        download_bytes=13_790_000_000,
        weights_bytes=13_761_264_768,
        kv_bytes_per_token=12 * 2 * 8 * 64 * 2,
    ),
    ModelChoice(
        repo_id="openai/gpt-oss-120b",
        name="gpt-oss-120b",
        description="117B parameters, 5.1B active. Stronger; for Macs with 96 GB or more.",
        download_bytes=65_280_000_000,
        weights_bytes=65_248_815_744,
        kv_bytes_per_token=18 * 2 * 8 * 64 * 2,
    ),
)


@dataclass(frozen=True)
class FitVerdict:
    """`fits`: within the GPU budget. `runs`: over it but under the swap limit (slow, and
    other apps are paged out). Neither: refused unless the user insists."""

    fits: bool
    runs: bool
    needed_bytes: int
    budget_bytes: int
    total_ram_bytes: int
    message: str


def check_fit(name: str, needed_bytes: int, total_ram: int) -> FitVerdict:
    budget = usable_memory_bytes(total_ram)
    needed, ram, gpu = format_bytes(needed_bytes), format_bytes(total_ram), format_bytes(budget)
    if needed_bytes <= budget:
        message = f"{name} needs about {needed} of the {gpu} this Mac's GPU can use."
        return FitVerdict(True, True, needed_bytes, budget, total_ram, message)
    if needed_bytes <= total_ram * _SWAP_LIMIT:
        message = (
            f"{name} needs about {needed}, more than the {gpu} macOS lets the GPU use on this Mac "
            f"({ram} of memory). It will run slowly and other apps will be swapped out. Quit other apps, "
            "or choose a shorter context length in Settings."
        )
        return FitVerdict(False, True, needed_bytes, budget, total_ram, message)
    message = (
        f"{name} will not fit: it needs about {needed}, and this Mac has {ram} of memory in all. "
        "Loading it would bring the whole system to a crawl. Choose a smaller model or a shorter context."
    )
    return FitVerdict(False, False, needed_bytes, budget, total_ram, message)


def load_options_for(
    manual: LoadOptions | None, model_dir: Path, context_length: int | None, fit: FitFunction
) -> LoadOptions:
    """The options a load uses: the manual ones (Settings › Memory), else the least lossy that fit
    this Mac, else the defaults, which the fit check then reports as not fitting."""
    if manual is not None:
        return manual
    return fit(model_dir, context_length or SMALLEST_CONTEXT) or LoadOptions()


def memory_summary(options: LoadOptions) -> str:
    """What a load gives up for memory, in a few words; "" for the weights as published."""
    parts = []
    if options.dense_bits != 16:
        parts.append(f"{options.dense_bits}-bit attention and unembedding")
    if options.expert_budget_bytes is not None:
        parts.append(f"experts paged, {options.expert_budget_bytes / GIB:.1f} GiB in memory")
    return ", ".join(parts)


def check_model_fit(
    model_dir: Path,
    context_length: int | None,
    options: LoadOptions,
    estimate: EstimateFunction,
    total_ram: int | None = None,
) -> FitVerdict:
    """The check before loading a model folder, with the engine's estimate of what it needs
    when loaded with `options`."""
    needed = estimate(model_dir, context_length or SMALLEST_CONTEXT, options).total_bytes
    return check_fit(model_dir.name, needed, total_memory_bytes() if total_ram is None else total_ram)


def offer(choice: ModelChoice, total_ram: int, context_length: int | None = None) -> FitVerdict:
    """Whether the first-run screen offers `choice` on a Mac with `total_ram` (it does when the
    model at least runs), and the sentence that explains it."""
    return check_fit(choice.name, choice.estimate(context_length).total_bytes, total_ram)
