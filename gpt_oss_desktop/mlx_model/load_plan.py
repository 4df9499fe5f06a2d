"""How to load a model on this machine, decided in one place: `plan_load` picks the load options
(the caller's manual ones, else the least lossy that fit), estimates what they keep in memory,
and says what they give up and whether the result fits, runs slowly or must not be loaded.

The app's fit check before a load, its Settings › Memory estimate, its model dialog's offer and
the terminal chat's `--fit` all read the same `LoadPlan`. Reading a folder's shard headers takes
milliseconds but touches the disk: the app calls this off its GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import memory
from .config import ModelConfig
from .loader import LoadOptions
from .memory import MemoryEstimate, ModelSource
from .units import GIB, format_bytes

SWAP_LIMIT = 0.9
"""Above this share of RAM a model would page constantly: refused unless the user insists."""


@dataclass(frozen=True)
class LoadPlan:
    """`fits`: within the GPU budget. `runs`: over it but under the swap limit (slow, and other
    apps are paged out). Neither: refused unless the user insists. `automatic`: the options were
    picked to fit, not chosen by hand."""

    name: str
    options: LoadOptions
    context_length: int
    estimate: MemoryEstimate
    experts_bytes: int
    budget_bytes: int
    total_ram_bytes: int
    automatic: bool
    # The context the engine will load with (`context_length`, or for an automatic context the
    # longest whose KV cache fits beside these options' weights, as Engine.__init__ picks it):
    # what Settings shows, with `engine_needed_bytes`.
    engine_context_length: int = 0
    # The longest context whose KV cache fits the GPU budget beside these options' weights (0:
    # none), and the model's config, so a longer context's cost can be stated (`needed_bytes_at`).
    longest_context: int = 0
    config: ModelConfig | None = None

    def needed_bytes_at(self, context_length: int) -> int:
        """The memory these options (their KV cache width included) take with `context_length`
        tokens of context in use."""
        if self.config is None:
            raise ValueError("this plan was made without the model's config")
        kv = memory.kv_bytes(self.config, context_length, self.options.kv_bits)
        return self.estimate.weights_bytes + kv + self.estimate.overhead_bytes

    @property
    def engine_needed_bytes(self) -> int:
        """The memory the engine takes once its context is full."""
        return self.needed_bytes_at(self.engine_context_length)

    @property
    def needed_bytes(self) -> int:
        return self.estimate.total_bytes

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.budget_bytes

    @property
    def runs(self) -> bool:
        return self.fits or self.needed_bytes <= self.total_ram_bytes * SWAP_LIMIT

    @property
    def summary(self) -> str:
        """What the load gives up for memory, in a few words; "" for the weights as published."""
        return memory_summary(self.options)

    @property
    def given_up(self) -> str:
        """What the load gives up, and what that does to replies, in a sentence to follow
        "fits … with"; "" for the weights as published, all in memory."""
        kept, costs = [], []
        if self.options.dense_bits != 16:
            kept.append(_rounded(self.options))
            costs.append("changes its answers")
        if self.options.kv_bits != 16:
            kept.append(KV_8_BIT)
            costs.append("changes its answers very slightly")
        budget = self.options.expert_budget_bytes
        share = 1.0 if budget is None else min(1.0, budget / self.experts_bytes)
        if share < 1:
            kept.append(f"{int(share * 100)}% of its experts in memory")
            costs.append("makes replies very slow" if share < memory.EXACT_PAGING_MIN_SHARE else "makes replies slower")
        if not kept:
            return ""
        rest = "; the rest are read from disk as needed" if share < 1 else ""
        return f"{' and '.join(kept)}{rest}, which {' and '.join(costs)}."

    @property
    def message(self) -> str:
        """Why the plan fits, runs slowly or must not be loaded, for the person choosing."""
        name, given_up = self.name, self.given_up
        needed, ram, gpu = (format_bytes(b) for b in (self.needed_bytes, self.total_ram_bytes, self.budget_bytes))
        if self.fits:
            return (f"{name} fits this Mac's {gpu} GPU budget with {given_up}" if given_up
                    else f"{name} needs about {needed} of the {gpu} this Mac's GPU can use.")
        if self.runs:
            return (
                f"{name} needs about {needed}, more than the {gpu} macOS lets the GPU use on this Mac "
                f"({ram} of memory). It will run slowly and other apps will be swapped out. Quit other apps, "
                "or choose a shorter context length in Settings."
            )
        return (
            f"{name} will not fit: it needs about {needed}, and this Mac has {ram} of memory in all. "
            "Loading it would bring the whole system to a crawl. Choose a smaller model or a shorter context."
        )


KV_8_BIT = "an 8-bit KV cache"


def _rounded(options: LoadOptions) -> str:
    return f"{options.dense_bits}-bit attention and unembedding"


def memory_summary(options: LoadOptions) -> str:
    """What a load with `options` gives up for memory, in a few words; "" for the weights as published."""
    parts = []
    if options.dense_bits != 16:
        parts.append(_rounded(options))
    if options.kv_bits != 16:
        parts.append(KV_8_BIT)
    if options.expert_budget_bytes is not None:
        parts.append(f"experts paged, {options.expert_budget_bytes / GIB:.1f} GiB in memory")
    return ", ".join(parts)


def plan_load(
    model: ModelSource,
    context_length: int | None = None,
    manual: LoadOptions | None = None,
    *,
    name: str | None = None,
    total_ram: int | None = None,
    kv_bits: int | None = None,
) -> LoadPlan:
    """The plan for loading `model` (a folder, or a published config before its download) at
    `context_length` (None: automatic, checked at the smallest context the engine picks) on a
    machine with `total_ram` bytes (default: this one). `manual` options are used as given; else
    the least lossy that fit (with the KV cache at `kv_bits` when given, else 16 bits unless 8
    is what makes it fit), else the weights as published, which the plan then reports as not
    fitting. `name` names the model in the message (default: the folder's name)."""
    if name is None:
        if not isinstance(model, (str, Path)):
            raise ValueError("a plan for a config needs the model's name")
        name = Path(model).name
    total_ram = memory.total_memory_bytes() if total_ram is None else total_ram
    budget = memory.usable_memory_bytes(total_ram)
    context = context_length or memory.MIN_CONTEXT
    tensors = memory.checkpoint_tensors(model)  # the shard headers, read once
    options = manual
    if options is None:
        options = memory.fitting_options(tensors, context, budget, kv_bits) or LoadOptions(kv_bits=kv_bits or 16)
    estimate = memory.estimate(tensors, context, options)
    weights = memory.resident_bytes(tensors, options)
    engine_context = context_length or memory.default_context_length(tensors.config, weights, budget, options.kv_bits)
    return LoadPlan(
        name=name,
        options=options,
        context_length=context,
        estimate=estimate,
        engine_context_length=engine_context,
        experts_bytes=memory.experts_bytes(tensors),
        budget_bytes=budget,
        total_ram_bytes=total_ram,
        automatic=manual is None,
        longest_context=memory.longest_context(tensors.config, weights, budget, options.kv_bits),
        config=tensors.config,
    )
