"""A chat rendered once per reply: every message's harmony tokens, from which the engine takes
the prompt, the positions of the header messages' ends, and shorter prompts with the oldest
turns left out, without rendering anything again.

Rendering is per message (`render_message`), so a prompt is the concatenation of its messages'
tokens: header, the body messages kept, then `<|start|>assistant`. The chain of thought of every
turn that ended in a final answer is left out at assembly, as harmony asks (openai-harmony's own
renderer drops only the first turn's); what follows the last final answer, a turn still in its
tool-call loop, keeps it. Dropping older turns never moves the last final answer, so every
shortened prompt is token-identical with rendering the shortened chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .chat import Chat
from .harmony import render_message
from .harmony.messages import plain
from .harmony.render import has_function_tools
from .tokenizer import Tokenizer


def _is_final_answer(message: dict[str, Any]) -> bool:
    return plain(message.get("role")) == "assistant" and message.get("channel") == "final"


class RenderedChat:
    def __init__(self, tokenizer: Tokenizer, header: Sequence[dict[str, Any]], body: Sequence[dict[str, Any]]) -> None:
        self.tokenizer = tokenizer
        self.header = list(header)
        self.body: list[dict[str, Any]] = []
        self._functions = has_function_tools(self.header)
        self._header_tokens = [self._render(index, message) for index, message in enumerate(self.header)]
        self._body_tokens: list[list[int]] = []
        self._suffix = [tokenizer.encode_special("<|start|>"), *tokenizer.encode("assistant")]
        self.extend(body)

    def _render(self, index: int, message: dict[str, Any]) -> list[int]:
        try:
            return render_message(message, self.tokenizer, has_function_tools=self._functions)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"message {index} cannot be rendered: {exc}") from exc

    def extend(self, messages: Sequence[dict[str, Any]]) -> None:
        """Add messages at the end (a reply's, tool results), rendering only them."""
        offset = len(self.header) + len(self.body)
        self._body_tokens += [self._render(offset + i, message) for i, message in enumerate(messages)]
        self.body += messages

    @property
    def header_edges(self) -> list[int]:
        """The position after each header message (where window caches are worth snapshotting)."""
        edges, position = [], 0
        for tokens in self._header_tokens:
            position += len(tokens)
            edges.append(position)
        return edges

    def user_turns(self) -> list[int]:
        """Indices into `body` of the user messages."""
        return [i for i, message in enumerate(self.body) if plain(message.get("role")) == "user"]

    def _kept(self, first: int, stop: int) -> list[int]:
        """Tokens of body[first:stop], without the chain of thought of completed turns."""
        finals = [i for i, message in enumerate(self.body) if _is_final_answer(message)]
        cutoff = finals[-1] if finals else 0
        tokens: list[int] = []
        for index in range(first, stop):
            if index < cutoff and self.body[index].get("channel") == "analysis":
                continue
            tokens += self._body_tokens[index]
        return tokens

    def context(self, first: int = 0, stop: int | None = None) -> list[int]:
        """The header and body[first:stop] as the model reads them, without the completion
        suffix."""
        header = [token for tokens in self._header_tokens for token in tokens]
        return header + self._kept(first, len(self.body) if stop is None else stop)

    def prompt(self, first: int = 0) -> list[int]:
        """The prompt for the assistant's next turn with body[first:] in it."""
        return self.context(first) + self._suffix

    def continued(self, written: list[int], upto: int) -> list[int]:
        """The prompt that continues `written`, the tokens the model read and wrote for
        body[:upto], with what came after (tool results) rendered as usual."""
        return written + self._kept(upto, len(self.body)) + self._suffix


@dataclass(frozen=True)
class ToolContinuation:
    """After a reply that ended in a tool call: the chat as rendered then, and the tokens the
    model actually read and wrote, so the next prompt continues them verbatim (cache fully
    reused) when what follows is only tool results."""

    message_count: int  # body messages up to the call
    context: list[int]  # those messages as rendered
    written: list[int]  # the prompt then and the generated tokens

    def prompt(self, rendered: RenderedChat) -> list[int] | None:
        """The continued prompt for `rendered`, or None when it is not this chat continued."""
        body = rendered.body
        if len(body) <= self.message_count or any(m.get("role") != "tool" for m in body[self.message_count :]):
            return None
        if rendered.context(0, self.message_count) != self.context:
            return None
        return rendered.continued(self.written, self.message_count)


def render_prompt(chat: Chat, tokenizer: Tokenizer) -> list[int]:
    """The prompt the engine renders for `chat`'s next reply (no response format, no tool-call
    continuation, before any fitting to the context), without loading a model: what a peer
    engine is fed in bench/speed.py, so both read the same tokens."""
    return RenderedChat(tokenizer, chat.header_messages(), chat.messages).prompt()
