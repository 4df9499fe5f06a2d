"""The per-reply controller: follows the harmony structure token by token and says, before each
token is sampled, which tokens may come next (None: any).

Only three places are held: the final answer's content (to the response format, ending in
`<|return|>`), a strict tool call's arguments (to its parameters, ending in `<|call|>`), and
message headers, where a recipient must be a declared tool (functions and the built-in browser
and python), the final header must come when a format is set and a call when one is required
(`tool_choice`). The chain of thought and preambles run free, so the model's own reasoning is
untouched; the only tokens taken from them are stops the reply may not take yet (`<|return|>`
before the answer, `<|call|>` outside a call). When the reasoning budget is spent, or the model
ends a message before its answer while a format is set, the controller writes the final header
(or, with a call required, the next header's start) itself.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence

import llguidance
import mlx.core as mx
import numpy as np

from ..harmony.header import read_header
from .bitmask import allocate, allow, apply, forbid, only
from .formats import StructuredOutputError
from .grammar import GRAMMAR_END, Grammar, fill, forbid_special, may_end
from .plan import StructuredPlan


class _State(enum.Enum):
    HEADER = "header"
    CONTENT = "content"
    BETWEEN = "between messages"


class _Region:
    """A grammar held over a run of tokens; `end` (if any) is the token the grammar's end becomes."""

    def __init__(self, grammar: Grammar, end: int | None, tokenizer) -> None:
        self.grammar = grammar
        self.end = end
        self.matcher: llguidance.LLMatcher = grammar.matcher()
        self.tokens: list[int] = []
        self._tokenizer = tokenizer

    def fill(self, mask: np.ndarray) -> None:
        fill(self.matcher, mask)
        if self.matcher.is_error():
            error = self.matcher.get_error().splitlines()[0]
            raise StructuredOutputError(f"{self.grammar.what} failed after {self.text()!r}: {error}")
        ends = may_end(mask)
        forbid(mask, GRAMMAR_END)
        if self.end is not None:  # an answer or arguments: text only, then the end token
            forbid_special(mask)
            if ends:
                allow(mask, self.end)
        if not mask.any():
            raise StructuredOutputError(
                f"{self.grammar.what} allows no next token after {self.text()!r}: it can only end inside a token "
                "or in text no token sequence writes"
            )

    def advance(self, token_id: int) -> bool:
        """Take a token; True when it ends the region."""
        if token_id == self.end:
            return True
        self.tokens.append(token_id)
        if not self.matcher.consume_token(token_id):
            raise StructuredOutputError(f"{self.grammar.what} rejected token {token_id} after {self.text()!r}")
        return self.end is None and self.matcher.is_stopped()

    def text(self) -> str:
        return self._tokenizer.decode(self.tokens)


class StructuredDecoder:
    """Call `next_mask()` before sampling each token and `advance(token)` after it."""

    def __init__(self, plan: StructuredPlan) -> None:
        self.plan = plan
        self._ids = plan.tokens
        self._mask = allocate(plan.n_vocab)
        self._state = _State.HEADER
        self._role_known = True  # the prompt ends with <|start|>assistant
        self._header: list[int] = []
        self._header_region: _Region | None = None
        self._content: _Region | None = None
        self._forced: deque[int] = deque()
        self._answering = False  # the final message has opened
        self._in_call = False
        self._answer_header_next = False  # the next header must be the answer's (or a call's)
        self.reasoning_tokens = 0
        self.budget_spent = False
        if plan.holds_headers:
            self._header_region = self._header_held(with_role=False, after_reasoning=False)
        self._check_budget()  # a budget of 0: the answer (or call) comes first

    # -- sampling side -----------------------------------------------------------------------

    def next_mask(self) -> np.ndarray | None:
        """The allowed next tokens as a bitmask row (reused between calls), or None for any.
        Raises StructuredOutputError when the grammar cannot go on."""
        if self._forced:
            return only(self._mask, self._forced[0])
        region = self._content if self._state is _State.CONTENT else self._header_region
        if region is None:
            return self._free_mask()
        region.fill(self._mask)
        return self._mask

    def _free_mask(self) -> np.ndarray | None:
        """Free text: any token but a stop the reply may not take here (a call's free content,
        python code, may not end the turn; the reasoning may not end it before its answer or call)."""
        ids = self._ids
        if self._in_call:
            stops = (ids.return_,)
        elif self.plan.must_write and not self._answering:
            stops = (ids.return_, ids.call)
        else:
            return None
        self._mask[:] = -1
        for token_id in stops:
            forbid(self._mask, token_id)
        return self._mask

    def unfinished(self) -> str | None:
        """Why the reply cannot count as complete if it stopped now (a held answer or call cut
        short), else None."""
        if self._content is not None and self._state is _State.CONTENT:
            return f"the reply stopped inside its constrained part ({self._content.grammar.what}): it is incomplete"
        if self.plan.must_write and not self._answering and not self._in_call:
            wanted = "required tool call" if self.plan.call_required else "answer"
            return f"the reply stopped before its {wanted}: it is incomplete"
        return None

    # -- tracking side -----------------------------------------------------------------------

    def advance(self, token_id: int) -> None:
        if self._forced:
            self._forced.popleft()
        if not self._answering:
            self.reasoning_tokens += 1
        if self._state is _State.HEADER:
            self._header_token(token_id)
        elif self._state is _State.CONTENT:
            self._content_token(token_id)
        else:
            self._between_token(token_id)
        self._check_budget()

    def _header_token(self, token_id: int) -> None:
        ids = self._ids
        if self._header_region is not None:
            self._header_region.advance(token_id)
        if token_id == ids.message:
            self._open_message()
        elif token_id in (ids.end, ids.return_, ids.call):
            self._header_region = None
            self._message_ended(token_id)
        else:
            self._header.append(token_id)

    def _open_message(self) -> None:
        plan = self.plan
        text = plan.tokenizer.decode(self._header)
        header = read_header(text, "assistant" if self._role_known else None).header
        self._header, self._header_region = [], None
        self._state = _State.CONTENT
        self._in_call = header.recipient is not None and header.recipient != "all"
        if header.channel == "final" and not self._in_call:
            self._answering = True
            if plan.answer is not None:
                self._content = _Region(plan.answer, self._ids.return_, plan.tokenizer)
        elif header.recipient in plan.arguments:
            self._content = _Region(plan.arguments[header.recipient], self._ids.call, plan.tokenizer)

    def _content_token(self, token_id: int) -> None:
        ids = self._ids
        if self._content is not None and self._content.advance(token_id):
            self._content = None
        if token_id not in (ids.end, ids.return_, ids.call):
            return
        self._content = None
        self._message_ended(token_id)

    def _message_ended(self, token_id: int) -> None:
        self._state = _State.BETWEEN
        self._in_call = False
        if token_id == self._ids.end and not self._answering and self.plan.must_write and not self._forced:
            self._open_answer_after_reasoning()

    def _between_token(self, token_id: int) -> None:
        if token_id != self._ids.start:
            return
        self._state = _State.HEADER
        self._role_known = False
        self._header = []
        if self._forced:
            return
        after_reasoning, self._answer_header_next = self._answer_header_next, False
        if after_reasoning or self.plan.holds_headers:
            self._header_region = self._header_held(with_role=True, after_reasoning=after_reasoning)

    def _header_held(self, *, with_role: bool, after_reasoning: bool) -> _Region:
        grammar = self.plan.header_grammar(with_role=with_role, after_reasoning=after_reasoning)
        return _Region(grammar, None, self.plan.tokenizer)

    def _open_answer_after_reasoning(self) -> None:
        """A message before the answer ended: the next one is the answer (or, with tools, a call)."""
        if self.plan.holds_headers:
            self._forced.append(self._ids.start)
            self._answer_header_next = True
        else:
            self._forced.extend(self._ids.final_header())

    def _check_budget(self) -> None:
        budget = self.plan.max_reasoning_tokens
        if (budget is None or self.budget_spent or self._answering or self._in_call or self._forced
                or self.reasoning_tokens < budget):
            return
        self.budget_spent = True
        self._answer_header_next = False
        ids = self._ids
        at_header_start = self._state is _State.HEADER and not self._header
        if self.plan.call_required:  # the next header is held to a call
            if at_header_start:
                self._header_region = self._header_held(with_role=not self._role_known, after_reasoning=True)
                return
            self._header_region = None
            self._forced.extend([ids.start] if self._state is _State.BETWEEN else [ids.end, ids.start])
            self._answer_header_next = True
            return
        self._header_region = None
        final = ids.final_header()
        if self._state is _State.BETWEEN:
            self._forced.extend(final)
        elif at_header_start:  # right after <|start|>, or at the reply's start (after <|start|>assistant)
            self._forced.extend(final[1:] if not self._role_known else final[1 + len(ids.assistant):])
        else:
            self._forced.extend([ids.end, *final])


class StructuredProcessor:
    """The decoder as the decode loop's logits processor: it reads the ids generated since its
    last call, then masks the next token's logits (on the device)."""

    def __init__(self, decoder: StructuredDecoder) -> None:
        self.decoder = decoder
        self._seen = 0

    def __call__(self, generated: Sequence[int], logits: mx.array) -> mx.array:
        for token_id in generated[self._seen :]:
            self.decoder.advance(token_id)
        self._seen = len(generated)
        mask = self.decoder.next_mask()
        return logits if mask is None else apply(logits, mask)
