"""The generation engine shared by the terminal chat and the app: a chat in, a stream of harmony
events out, with the KV cache reused across turns.

A reply is a few separate steps: render the chat once (`prompt.RenderedChat`), fit it to the
context (`_fit_to_context`) or continue a tool call verbatim (`prompt.ToolContinuation`), pick
the prompt cache that reuses most of it (`cache_pool.CachePool`: several conversations keep
their KV state), prefill (`forward.ForwardPass`), decode (`decode.DecodeLoop`, where logits processors hook in), parse
(`harmony.StreamParser`), and time it all (`_ReplyClock` → `Stats`).

Decoding goes one `forward.StepRequest` at a time: `reply` runs each step itself, while
`reply(batched=True)` yields them, so a driver (the server's `DecodeBatch`) can run the steps of
several replies as one forward pass (`run_steps`); their caches are pinned in the pool meanwhile.

One engine owns one model and its caches and is driven from one thread (MLX arrays belong to the
stream that made them); the app gives it a worker thread of its own. Cancelling is checked
between prefill chunks and between tokens, and leaves the cache holding exactly the tokens it
records, so the next turn continues from a consistent state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import mlx.core as mx

from . import kernels
from .cache_file import CacheStamp, CacheStore
from .cache_pool import CachePool, PooledCache
from .cache_spill import DEFAULT_MIN_TOKENS, SpilledCaches
from .chat import Chat
from .config import ModelConfig
from .decode import DecodeLoop, LogitsProcessor
from .events import Done, Event, ExpertPaging, Stats
from .forward import Cancelled, ForwardPass, PrefillResult, StepRequest, answer_steps
from .harmony import StreamParser
from .loader import LoadOptions, load
from .memory import default_context_length, kv_bytes, resident_bytes
from .offload import PagedExperts
from .prompt import RenderedChat, ToolContinuation
from .prompt_cache import PromptCache
from .sampling import Sampler, SamplingSettings
from .structured import (
    ResponseFormat,
    StructuredDecoder,
    StructuredOutputError,
    StructuredPlan,
    StructuredProcessor,
    ToolChoice,
    with_response_format,
)
from .tokenizer import Tokenizer, load_tokenizer

OverflowPolicy = Literal["drop_oldest", "stop"]
_CUT_SHORT = ("max_tokens", "context_full", "cancelled")  # ends at which a held answer may be unfinished


class EngineError(RuntimeError):
    """A problem the user must act on (the message says what), e.g. a model that cannot load."""


@dataclass(frozen=True)
class _FileStamp:
    """A weight file as it was at load: the model reads it through a memory map (and paged
    experts read it again), so a file truncated or rewritten under it would fault (SIGBUS)."""

    path: Path
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> "_FileStamp":
        status = path.stat()
        return cls(path, status.st_size, status.st_mtime_ns, status.st_ino)

    def change(self) -> str | None:
        """How the file changed since it was stamped, or None."""
        try:
            now = _FileStamp.of(self.path)
        except OSError:
            return "was removed"
        if now.size != self.size:
            return f"changed size from {self.size:,} to {now.size:,} bytes"
        if (now.mtime_ns, now.inode) != (self.mtime_ns, self.inode):
            return "was rewritten"
        return None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    num_layers: int
    num_experts: int
    context_limit: int
    weights_bytes: int  # what the load keeps in memory, under its LoadOptions
    # The custom kernels' self-check at load (None on the reference backend); its `warning()`
    # names any kernel replaced by its MLX twin for this process.
    kernel_check: kernels.KernelCheck | None = None


@dataclass
class _ReplyClock:
    """When a reply's stages happened, and the figures they make."""

    started: float
    paging_before: ExpertPaging | None
    prefill_seconds: float = 0.0
    first_token_at: float | None = None

    def token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()


class Engine:
    def __init__(
        self,
        model,
        tokenizer: Tokenizer,
        path: Path,
        *,
        context_length: int | None = None,
        options: LoadOptions = LoadOptions(),
        overflow: OverflowPolicy = "drop_oldest",
        chunk_size: int = 512,
        cache_budget_bytes: int | None = None,
    ) -> None:
        """`options` are those `model` was loaded with: the automatic context fits the KV cache
        beside what they keep in memory, not beside the whole checkpoint. The prompt caches of
        several conversations share `cache_budget_bytes` (default: one full context's KV cache,
        the memory the context length was chosen to fit)."""
        self.model = model
        self.tokenizer = tokenizer
        self.config: ModelConfig = model.config
        weights = resident_bytes(path, options)
        limit = context_length or default_context_length(self.config, weights, kv_bits=options.kv_bits)
        if not 16 <= limit <= self.config.max_position_embeddings:
            raise EngineError(
                f"context length {limit} is outside 16 … {self.config.max_position_embeddings} for this model"
            )
        self.info = ModelInfo(
            name=path.name, path=path, num_layers=self.config.num_hidden_layers,
            num_experts=self.config.num_local_experts, context_limit=limit, weights_bytes=weights,
        )
        self.overflow = overflow
        self._weight_files = [_FileStamp.of(shard) for shard in sorted(path.glob("*.safetensors"))]
        self.chunk_size = chunk_size
        activations = model.model.norm.weight.dtype  # what the keys and values are held in
        self.caches = CachePool(model, cache_budget_bytes or kv_bytes(
            self.config, limit, options.kv_bits, activations.size))
        self.cache_stamp = CacheStamp.of(path, options, activations)
        self.spilled: SpilledCaches | None = None
        self.last_prompt: list[int] = []

    @property
    def cache(self) -> PromptCache:
        """The prompt cache the last reply used."""
        return self.caches.current.cache

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        context_length: int | None = None,
        dtype: mx.Dtype = mx.bfloat16,
        options: LoadOptions = LoadOptions(),
        overflow: OverflowPolicy = "drop_oldest",
        progress: Callable[[str, float], None] | None = None,
        cache_budget_bytes: int | None = None,
    ) -> "Engine":
        """Load a model folder (weights and tokenizer). Blocking: call it off the GUI thread.

        `options` says how weights are held (see LoadOptions; memory.fitting_options picks the
        least lossy that fits a machine)."""
        folder = Path(path).expanduser()
        if progress:
            progress("Reading the tokenizer", 0.0)
        tokenizer = load_tokenizer(folder)
        if progress:
            progress("Loading the weights", 0.1)
        model = load(folder, dtype=dtype, options=options)
        if progress and kernels.default_backend() != "reference":
            progress("Checking the GPU kernels", 0.9)
        check = kernels.self_check()
        if progress:
            progress("Ready", 1.0)
        engine = cls(model, tokenizer, folder, context_length=context_length, options=options, overflow=overflow,
                     cache_budget_bytes=cache_budget_bytes)
        engine.info = replace(engine.info, kernel_check=check)
        return engine

    # -- prompts -------------------------------------------------------------------------------

    def render(self, chat: Chat, response_format: ResponseFormat | None = None) -> RenderedChat:
        """The chat rendered once, every message to its tokens (with a response format, the
        developer message tells the model its schema)."""
        header = with_response_format(chat.header_messages(), response_format)
        return RenderedChat(self.tokenizer, header, chat.messages)

    def structured_plan(
        self, chat: Chat, sampling: SamplingSettings, response_format: ResponseFormat | None = None,
        tool_choice: ToolChoice = "auto",
    ) -> StructuredPlan | None:
        """What a reply will be held to (compiled and cached per schema), or None for nothing.

        Raises StructuredOutputError for a format or strict tool schema that cannot be enforced,
        or a tool_choice naming no declared tool, so a server can refuse the request before it
        streams."""
        plan = StructuredPlan.build(
            self.tokenizer, self.config.vocab_size, response_format=response_format, tools=chat.tools,
            builtin_tools=chat.builtin_tools, tool_choice=tool_choice,
            max_reasoning_tokens=sampling.max_reasoning_tokens,
        )
        return plan if plan.active else None

    def _prompt(self, rendered: RenderedChat) -> list[int]:
        """The whole chat's prompt, continuing a tool-call turn with the tokens the model wrote."""
        continued = self.caches.continued_prompt(rendered)
        return continued if continued is not None else rendered.prompt()

    def _fit_to_context(self, rendered: RenderedChat, reserve: int) -> tuple[list[int], int] | str:
        """The prompt and how many old messages were left out to fit, or why it cannot fit."""
        prompt, first = self._prompt(rendered), 0
        while len(prompt) + reserve > self.info.context_limit:
            later_turns = [i for i in rendered.user_turns() if i > first]
            if self.overflow == "stop" or not later_turns:
                return (
                    f"The conversation needs {len(prompt)} tokens plus {reserve} for the reply, but the "
                    f"context holds {self.info.context_limit}. Start a new chat or raise the context length."
                )
            first = later_turns[0]  # drop the oldest turn: everything before the next user message
            prompt = rendered.prompt(first)
        return prompt, first

    def prompt_tokens(self, chat: Chat) -> list[int]:
        """The prompt the next reply would read, before any fitting to the context."""
        return self._prompt(self.render(chat))

    def count_tokens(self, chat: Chat) -> int:
        return len(self.prompt_tokens(chat))

    def check_files(self) -> None:
        """Raise EngineError when a weight file changed on disk since the load: reading it would
        fault the process, so no reply starts until the model is loaded again."""
        for stamp in self._weight_files:
            change = stamp.change()
            if change:
                raise EngineError(
                    f"The model file {stamp.path} {change} since the model was loaded, so the model can no longer "
                    f"answer safely. Load the model again (it reads the files as they are now)."
                )

    def memory_in_use(self) -> int:
        return mx.get_active_memory()

    def paging_stats(self) -> ExpertPaging | None:
        """Expert hits and misses since the load, summed over the layers (a frozen value, so it
        can be handed to another thread); None when every expert is resident."""
        layers = [layer.mlp.experts.stats for layer in self.model.model.layers
                  if isinstance(layer.mlp.experts, PagedExperts)]
        if not layers:
            return None
        return ExpertPaging(sum(s.hits for s in layers), sum(s.misses for s in layers),
                            sum(s.bytes_read for s in layers))

    def _stats(self, clock: _ReplyClock, pooled: PooledCache, prompt: list[int], prefilled: PrefillResult | None,
               generated: list[int], dropped: int, chat_tokens: int) -> Stats:
        ended = time.perf_counter()
        first = clock.first_token_at
        decode_seconds = ended - first if first else 0.0
        reused = prefilled.reused_tokens if prefilled else 0
        paging = None if clock.paging_before is None else self.paging_stats().since(clock.paging_before)
        return Stats(
            prompt_tokens=len(prompt),
            cached_tokens=reused,
            new_tokens=len(generated),
            ttft_s=(first or ended) - clock.started,
            tokens_per_s=(len(generated) - 1) / decode_seconds if len(generated) > 1 and decode_seconds else 0.0,
            peak_memory_bytes=mx.get_peak_memory(),
            prefill_tokens_per_s=(len(prompt) - reused) / clock.prefill_seconds if clock.prefill_seconds else 0.0,
            context_tokens=len(pooled.cache.tokens),
            context_limit=self.info.context_limit,
            dropped_messages=dropped,
            expert_hit_rate=None if paging is None else paging.hit_rate,
            chat_tokens=chat_tokens,
        )

    # -- prompt caches on disk ----------------------------------------------------------------

    def save_prompt_cache(self, store: CacheStore, key: str, chat: Chat) -> bool:
        """Write what the pool holds of `chat` (`key`: its id), when it is left, so reopening
        it, after a restart too, prefills only what is new. False when nothing of it is held or
        the disk budget cannot hold it."""
        prompt = self.prompt_tokens(chat)
        held = self.caches.best_for(prompt).cache
        if not held.reusable_prefix(prompt):
            return False
        return store.save(key, held.fork(prompt), self.cache_stamp)

    def restore_prompt_cache(self, store: CacheStore, key: str, chat: Chat) -> str | None:
        """Put `key`'s saved cache in the pool when it reuses more of `chat` than the pool
        does; returns a note when a file was there but refused (removed: the chat is read
        afresh, never from a cache that does not match)."""
        prompt = self.prompt_tokens(chat)
        saved = store.token_count(key)
        if saved is None or 0 < saved <= self.caches.reusable_prefix(prompt):  # 0: unreadable, load says why
            return None
        cache, note = store.load(key, self.model, self.cache_stamp)
        if cache is not None:
            self.caches.adopt(cache)
        return note

    def spill_prompt_caches(self, store: CacheStore, min_tokens: int = DEFAULT_MIN_TOKENS) -> None:
        """Keep the caches of replies asked with `keep_on_disk` (the local server's, whose
        conversations have no ids) that the pool drops in `store`, keyed by their tokens, and
        read one back when a prompt continues it; see cache_spill. `save_spilled_caches` adds
        what the pool holds, at shutdown."""
        self.spilled = SpilledCaches(store, self.model, self.cache_stamp, min_tokens)
        self.caches.on_drop = self.spilled.keep

    def save_spilled_caches(self) -> int:
        """Write every cache the pool holds to the spill store (at shutdown); how many were written."""
        if self.spilled is None:
            return 0
        entries = sorted(self.caches.entries, key=lambda entry: -entry.history)
        return sum(self.spilled.keep(entry, entries[:index]) for index, entry in enumerate(entries))  # longest first

    def _reload_spilled(self, prompt: list[int]) -> None:
        if self.spilled is not None:
            found = self.spilled.reload(prompt, self.caches.reusable_prefix(prompt))
            if found is not None:
                self.caches.adopt(*found, keep_on_disk=True)

    # -- generation ----------------------------------------------------------------------------

    def reply(
        self,
        chat: Chat,
        sampling: SamplingSettings = SamplingSettings(),
        cancel: threading.Event | None = None,
        on_token: Callable[[int], None] | None = None,
        logits_processors: Sequence[LogitsProcessor] = (),
        response_format: ResponseFormat | None = None,
        tool_choice: ToolChoice = "auto",
        on_prompt: Callable[[list[int]], None] | None = None,
        batched: bool = False,
        keep_on_disk: bool = False,
    ) -> Iterator[Event | StepRequest]:
        """Generate the assistant's next reply as events, ending with Stats and Done.

        The generated messages (on cancel or at the token limit, the unfinished one too, marked
        `status: "incomplete"`) are appended to `chat.messages` before Done is yielded. `on_token` sees every sampled id
        first and `on_prompt` the prompt as fitted to the context, once, before its prefill (the
        terminal's --raw view: nothing is rendered again for it); `logits_processors` shape every token's logits
        (see decode.LogitsProcessor). With `response_format` the final answer is held to it (the
        reasoning runs free); strict tools (`"strict": true`) hold their calls' arguments;
        `tool_choice` "required" or a recipient (`"functions.NAME"`) makes the reply a call;
        `sampling.max_reasoning_tokens` bounds the reasoning.

        With `batched` every decode step is yielded as a `StepRequest` too, which the caller
        runs (`run_steps`, with other replies' steps) before it reads on; otherwise the reply
        runs its own steps and yields events only. With `keep_on_disk` the reply's cache goes to
        the spill store when the pool drops it (`spill_prompt_caches`: the server's conversations).
        """
        steps = self._reply_steps(chat, sampling, cancel or threading.Event(), on_token, logits_processors,
                                  response_format, tool_choice, on_prompt, keep_on_disk)
        return steps if batched else self._run_alone(steps)

    def run_steps(self, requests: Sequence[StepRequest]) -> None:
        """Run the pending decode steps of several replies as one forward pass."""
        answer_steps(self.model, requests)

    def _run_alone(self, steps: Iterator[Event | StepRequest]) -> Iterator[Event]:
        for item in steps:
            if isinstance(item, StepRequest):
                answer_steps(self.model, [item])
            else:
                yield item

    def _reply_steps(
        self, chat: Chat, sampling: SamplingSettings, cancel: threading.Event, on_token: Callable[[int], None] | None,
        logits_processors: Sequence[LogitsProcessor], response_format: ResponseFormat | None,
        tool_choice: ToolChoice, on_prompt: Callable[[list[int]], None] | None, keep_on_disk: bool,
    ) -> Iterator[Event | StepRequest]:
        """`reply`'s work, yielding each decode step for its caller to run."""
        try:
            self.check_files()
            plan = self.structured_plan(chat, sampling, response_format, tool_choice)
        except (StructuredOutputError, EngineError) as exc:
            yield Done("error", str(exc))
            return
        structured = StructuredDecoder(plan) if plan else None
        if structured is not None:
            logits_processors = (StructuredProcessor(structured), *logits_processors)
        clock = _ReplyClock(time.perf_counter(), self.paging_stats())
        mx.reset_peak_memory()
        rendered = self.render(chat, response_format)
        reserve = min(sampling.max_new_tokens, self.info.context_limit // 4)
        fitted = self._fit_to_context(rendered, reserve)
        if isinstance(fitted, str):
            yield Done("context_full", fitted)
            return
        prompt, dropped = fitted
        self.last_prompt = prompt
        if on_prompt is not None:
            on_prompt(prompt)
        self._reload_spilled(prompt)
        pooled = self.caches.take(prompt)
        pooled.keep_on_disk |= keep_on_disk
        try:  # `finally` also when the caller stops reading: the cache may then be dropped or reused
            try:
                prefill_started = time.perf_counter()
                prefilled = ForwardPass(self.model, pooled.cache, self.chunk_size).prefill(
                    prompt, rendered.header_edges, cancel)
                clock.prefill_seconds = time.perf_counter() - prefill_started
            except Cancelled:
                pooled.history = min(pooled.history, len(pooled.cache.tokens))
                yield self._stats(clock, pooled, prompt, None, [], dropped, len(self._prompt(rendered)))
                yield Done("cancelled")
                return
            pooled.history = len(prompt)

            parser = StreamParser(self.tokenizer)
            decoder = DecodeLoop(pooled.cache, Sampler(sampling), logits_processors)
            failure = None
            try:
                decoder.start(prefilled.logits)
                while (step := decoder.next_step(max_new_tokens=sampling.max_new_tokens,
                                                 context_limit=self.info.context_limit, cancel=cancel)) is not None:
                    yield step
                    token_id = decoder.take(step)
                    clock.token()
                    if on_token is not None:
                        on_token(token_id)
                    yield from parser.feed(token_id)
                    if parser.stop_reason is not None:
                        break
            except StructuredOutputError as exc:  # the grammar cannot go on: what was written is kept
                failure = ("error", str(exc))
            reason, detail = failure or decoder.limit or (parser.stop_reason, "")
            unfinished = structured.unfinished() if structured is not None and reason in _CUT_SHORT else None
            if unfinished:
                detail = f"{detail}; {unfinished}" if detail else unfinished

            # Only a reply the model ended itself ("return", "call") is whole; otherwise the message
            # being written is closed as incomplete, never as if the model had finished it.
            yield from parser.finish(cut_short=reason not in ("return", "call"))
            new_messages = list(parser.messages)
            chat.messages.extend(new_messages)
            rendered.extend(new_messages)  # only the new messages are rendered
            if reason == "call":
                pooled.continuation = ToolContinuation(
                    len(rendered.body), rendered.context(0, len(rendered.body)), prompt + decoder.generated
                )
            else:
                pooled.continuation = None
                if reason == "return":
                    pooled.cache.checkpoint_before_last_step()
            yield self._stats(clock, pooled, prompt, prefilled, decoder.generated, dropped, len(rendered.prompt()))
            yield Done(reason, detail, tuple(new_messages))
        finally:
            self.caches.release(pooled)
