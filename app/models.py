"""The models the app offers, what this Mac can run, and the memory check before a load.

A published model is checked before its download as a folder is before its load: with the
options the load would use (the manual ones of Settings › Memory, else what automatic mode picks
for this Mac, `load_options_for`) and mlx_model.memory's estimate of what they keep in memory, from
the model's published config (`mlx_model.config.PUBLISHED`: its tensor sizes are known exactly).
What the GPU may use and the runtime overhead are mlx_model.memory's figures, the same the engine
uses to pick its context; a model that needs more than the GPU's share still runs, but slowly,
with the rest of the system swapped out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from mlx_model import memory
from mlx_model.config import PUBLISHED, ModelConfig
from mlx_model.hub import format_bytes
from mlx_model.loader import LoadOptions
from mlx_model.memory import GIB, ModelSource, total_memory_bytes, usable_memory_bytes

SMALLEST_CONTEXT = 4096
"""The context assumed when the setting is automatic: the engine never picks less."""
_SWAP_LIMIT = 0.9
"""Above this share of RAM a model would page constantly: refused unless the user insists."""
_MOSTLY_ON_DISK = memory.EXACT_PAGING_MIN_SHARE
"""Under this share of experts in memory replies are called very slow: fitting_options pages
that much only with 8-bit dense weights, when nothing exact fits."""


class MemoryEstimate(Protocol):
    weights_bytes: int
    kv_bytes: int

    @property
    def total_bytes(self) -> int: ...


EstimateFunction = Callable[[Path, int, LoadOptions], MemoryEstimate]
"""`mlx_model.memory.estimate(model_dir, context_length, options)`."""
FitFunction = Callable[[ModelSource, int], LoadOptions | None]
"""`mlx_model.memory.fitting_options(model, context_length)`, for this Mac's GPU budget."""


@dataclass(frozen=True)
class ModelChoice:
    repo_id: str
    """A key of mlx_model.config.PUBLISHED, whose config sizes the model before download."""
    name: str
    description: str
    download_bytes: int

    @property
    def config(self) -> ModelConfig:
        return PUBLISHED[self.repo_id]


CATALOGUE: tuple[ModelChoice, ...] = (
    ModelChoice(
        repo_id="openai/gpt-oss-20b",
        name="gpt-oss-20b",
        description="21B parameters, 3.6B active. Fast; for Macs with 16 GB or more.",
        download_bytes=13_790_000_000,
    ),
    ModelChoice(
        repo_id="openai/gpt-oss-120b",
        name="gpt-oss-120b",
        description=(
            "117B parameters, 5.1B active. Stronger; runs on Macs with 64 GB with part of its experts "
            "read from disk as needed (slower replies), fully in memory from 96 GB."
        ),
        download_bytes=65_280_000_000,
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


def check_fit(name: str, needed_bytes: int, total_ram: int, given_up: str = "") -> FitVerdict:
    """`given_up`: what the load options give up to fit (`_what_fitting_costs`), if anything."""
    budget = usable_memory_bytes(total_ram)
    needed, ram, gpu = format_bytes(needed_bytes), format_bytes(total_ram), format_bytes(budget)
    if needed_bytes <= budget:
        message = (f"{name} fits this Mac's {gpu} GPU budget with {given_up}" if given_up
                   else f"{name} needs about {needed} of the {gpu} this Mac's GPU can use.")
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
    manual: LoadOptions | None, model: ModelSource, context_length: int | None, fit: FitFunction
) -> LoadOptions:
    """The options a load uses: the manual ones (Settings › Memory), else the least lossy that fit
    this Mac, else the defaults, which the fit check then reports as not fitting."""
    if manual is not None:
        return manual
    return fit(model, context_length or SMALLEST_CONTEXT) or LoadOptions()


def _rounded(options: LoadOptions) -> str:
    return f"{options.dense_bits}-bit attention and unembedding"


def memory_summary(options: LoadOptions) -> str:
    """What a load gives up for memory, in a few words; "" for the weights as published."""
    parts = []
    if options.dense_bits != 16:
        parts.append(_rounded(options))
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


def _what_fitting_costs(options: LoadOptions, experts_bytes: int) -> str:
    """What a load with `options` gives up, and what that does to replies, in a sentence to
    follow "fits … with"; "" for the weights as published, all in memory."""
    kept, costs = [], []
    if options.dense_bits != 16:
        kept.append(_rounded(options))
        costs.append("changes its answers")
    budget = options.expert_budget_bytes
    share = 1.0 if budget is None else min(1.0, budget / experts_bytes)
    if share < 1:
        kept.append(f"{int(share * 100)}% of its experts in memory")
        costs.append("makes replies very slow" if share < _MOSTLY_ON_DISK else "makes replies slower")
    if not kept:
        return ""
    rest = "; the rest are read from disk as needed" if share < 1 else ""
    return f"{' and '.join(kept)}{rest}, which {' and '.join(costs)}."


def offer(
    choice: ModelChoice, total_ram: int, context_length: int | None = None, manual: LoadOptions | None = None
) -> FitVerdict:
    """Whether the model dialog offers `choice` on a Mac with `total_ram` (it does when the model
    at least runs), and the sentence that explains it, for the context and manual memory options
    of Settings: the check a load of the downloaded model would make, so what the dialog offers
    loads."""
    fit = partial(memory.fitting_options, usable=usable_memory_bytes(total_ram))
    options = load_options_for(manual, choice.config, context_length, fit)
    needed = memory.estimate(choice.config, context_length or SMALLEST_CONTEXT, options).total_bytes
    given_up = _what_fitting_costs(options, memory.experts_bytes(choice.config))
    return check_fit(choice.name, needed, total_ram, given_up)
