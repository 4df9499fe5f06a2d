"""The generation engine shared by the terminal chat and the app: a conversation in, a stream of
harmony events out, with the KV cache reused across turns.

One engine owns one model and its cache and is driven from one thread (MLX arrays belong to the
stream that made them); the app gives it a worker thread of its own. Cancelling is checked
between prefill chunks and between tokens, and leaves the cache holding exactly the tokens it
records, so the next turn continues from a consistent state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal

import mlx.core as mx

from .chat import Chat
from .config import ModelConfig
from .events import Done, Event, ExpertPaging, Stats
from .harmony import StreamParser, drop_completed_chain_of_thought, render_for_completion
from .loader import LoadOptions, load
from .memory import default_context_length, resident_bytes
from .offload import PagedExperts
from .prompt_cache import Cancelled, PromptCache
from .sampling import Sampler, SamplingSettings
from .tokenizer import Tokenizer, load_tokenizer

OverflowPolicy = Literal["drop_oldest", "stop"]
_COMPLETION_SUFFIX = 2  # render_for_completion ends with <|start|>assistant


class EngineError(RuntimeError):
    """A problem the user must act on (the message says what), e.g. a model that cannot load."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    num_layers: int
    num_experts: int
    context_limit: int
    weights_bytes: int  # what the load keeps in memory, under its LoadOptions


@dataclass(frozen=True)
class _ToolContinuation:
    """After a reply that ended in a tool call: the conversation as rendered then, and the tokens
    the model actually saw, so the next prompt continues them verbatim (cache fully reused)."""

    message_count: int
    rendered: list[int]
    tokens: list[int]


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
    ) -> None:
        """`options` are those `model` was loaded with: the automatic context fits the KV cache
        beside what they keep in memory, not beside the whole checkpoint."""
        self.model = model
        self.tokenizer = tokenizer
        self.config: ModelConfig = model.config
        weights = resident_bytes(path, options)
        limit = context_length or default_context_length(self.config, weights)
        if not 16 <= limit <= self.config.max_position_embeddings:
            raise EngineError(
                f"context length {limit} is outside 16 … {self.config.max_position_embeddings} for this model"
            )
        self.info = ModelInfo(
            name=path.name, path=path, num_layers=self.config.num_hidden_layers,
            num_experts=self.config.num_local_experts, context_limit=limit, weights_bytes=weights,
        )
        self.overflow = overflow
        self.cache = PromptCache(model, chunk_size=chunk_size)
        self._continuation: _ToolContinuation | None = None
        self.last_prompt: list[int] = []

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
        if progress:
            progress("Ready", 1.0)
        return cls(model, tokenizer, folder, context_length=context_length, options=options, overflow=overflow)

    # -- prompts -------------------------------------------------------------------------------

    def _render(self, messages: list[dict]) -> list[int]:
        """Render for completion with every completed turn's chain of thought dropped, as the
        harmony guide asks (openai-harmony itself keeps analysis after the first final)."""
        return render_for_completion(drop_completed_chain_of_thought(messages), self.tokenizer)

    def _prompt_tokens(self, messages: list[dict]) -> list[int]:
        """Render for completion, continuing a tool-call turn with the tokens the model wrote."""
        continuation = self._continuation
        if (
            continuation is not None
            and len(messages) > continuation.message_count
            and all(m.get("role") == "tool" for m in messages[continuation.message_count :])
            and self._render(messages[: continuation.message_count]) == continuation.rendered
        ):
            return continuation.tokens + self._render(messages[continuation.message_count :])
        return self._render(messages)

    def _fit_to_context(self, chat: Chat, reserve: int) -> tuple[list[int], list[dict], int] | str:
        """The prompt, its messages and how many old messages were left out to fit, or why not."""
        header = chat.header_messages()
        body = list(chat.messages)
        dropped = 0
        while True:
            messages = header + body
            prompt = self._prompt_tokens(messages)
            if len(prompt) + reserve <= self.info.context_limit:
                return prompt, messages, dropped
            user_turns = [i for i, m in enumerate(body) if m.get("role") == "user"]
            if self.overflow == "stop" or len(user_turns) < 2:
                return (
                    f"The conversation needs {len(prompt)} tokens plus {reserve} for the reply, but the "
                    f"context holds {self.info.context_limit}. Start a new chat or raise the context length."
                )
            # Drop the oldest turn: everything before the second user message.
            dropped += user_turns[1]
            body = body[user_turns[1] :]

    def prompt_tokens(self, chat: Chat) -> list[int]:
        """The prompt the next reply would read, before any fitting to the context."""
        return self._prompt_tokens(chat.harmony_messages())

    def count_tokens(self, chat: Chat) -> int:
        return len(self.prompt_tokens(chat))

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

    def _hit_rate_since(self, before: ExpertPaging | None) -> float | None:
        return None if before is None else self.paging_stats().since(before).hit_rate

    # -- generation ----------------------------------------------------------------------------

    def reply(
        self,
        chat: Chat,
        sampling: SamplingSettings = SamplingSettings(),
        cancel: threading.Event | None = None,
        on_token: Callable[[int], None] | None = None,
    ) -> Iterator[Event]:
        """Generate the assistant's next reply as events, ending with Stats and Done.

        The generated messages (on cancel or at the token limit, the unfinished one too) are
        appended to `chat.messages` before Done is yielded. `on_token` sees every
        sampled id first (the terminal's --raw view).
        """
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        paging_before = self.paging_stats()
        mx.reset_peak_memory()
        reserve = min(sampling.max_new_tokens, self.info.context_limit // 4)
        fitted = self._fit_to_context(chat, reserve)
        if isinstance(fitted, str):
            yield Done("context_full", fitted)
            return
        prompt, messages, dropped = fitted
        self.last_prompt = prompt
        header_edges = [len(self._render(messages[:n])) - _COMPLETION_SUFFIX
                        for n in range(1, len(chat.header_messages()) + 1)]

        def stats(generated: list[int], first_token_at: float | None, prefill_seconds: float, reused: int) -> Stats:
            ended = time.perf_counter()
            decode_seconds = ended - first_token_at if first_token_at else 0.0
            return Stats(
                prompt_tokens=len(prompt),
                cached_tokens=reused,
                new_tokens=len(generated),
                ttft_s=(first_token_at or ended) - started,
                tokens_per_s=(len(generated) - 1) / decode_seconds if len(generated) > 1 and decode_seconds else 0.0,
                peak_memory_bytes=mx.get_peak_memory(),
                prefill_tokens_per_s=(len(prompt) - reused) / prefill_seconds if prefill_seconds else 0.0,
                context_tokens=len(self.cache.tokens),
                context_limit=self.info.context_limit,
                dropped_messages=dropped,
                expert_hit_rate=self._hit_rate_since(paging_before),
            )

        try:
            prefill_started = time.perf_counter()
            prefilled = self.cache.prefill(prompt, header_edges, cancel)
            prefill_seconds = time.perf_counter() - prefill_started
        except Cancelled:
            yield stats([], None, 0.0, 0)
            yield Done("cancelled")
            return

        parser = StreamParser(self.tokenizer)
        sampler = Sampler(sampling)
        generated: list[int] = []
        first_token_at: float | None = None
        token = sampler(prefilled.logits)
        mx.async_eval(token)
        reason = "max_tokens"
        detail = ""
        while True:
            if cancel.is_set():
                reason = "cancelled"
                break
            if len(generated) >= sampling.max_new_tokens:
                reason, detail = "max_tokens", f"stopped after {len(generated)} tokens (the maximum)"
                break
            if len(self.cache.tokens) >= self.info.context_limit:
                reason, detail = "context_full", f"the context of {self.info.context_limit} tokens is full"
                break
            next_token = sampler(self.cache.step(token))
            mx.async_eval(next_token)
            token_id = token.item()
            self.cache.record(token_id)
            generated.append(token_id)
            if first_token_at is None:
                first_token_at = time.perf_counter()
            if on_token is not None:
                on_token(token_id)
            yield from parser.feed(token_id)
            if parser.stop_reason is not None:
                reason = parser.stop_reason
                break
            token = next_token

        yield from parser.finish()
        new_messages = list(parser.messages)
        chat.messages.extend(new_messages)
        if reason == "call":
            self._continuation = _ToolContinuation(
                len(messages) + len(new_messages), self._render(messages + new_messages), prompt + generated
            )
        else:
            self._continuation = None
            if reason == "return":
                self.cache.checkpoint_before_last_step()
        yield stats(generated, first_token_at, prefill_seconds, prefilled.reused_tokens)
        yield Done(reason, detail, tuple(new_messages))
