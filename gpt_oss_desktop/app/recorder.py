"""One streaming reply, written to the store while it streams.

The engine's events arrive token by token; writing each would cost a transaction per token, so
the text is kept in memory and written at most every `interval_s` (and at every message
boundary). A kill loses at most that interval. The full text is written each time, so a failed
write (a full disk) loses nothing: the next write carries it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .store import Store
from .transcript import stored_fields

FLUSH_INTERVAL_S = 0.25


class ReplyRecorder:
    def __init__(
        self,
        store: Store,
        conversation_id: int,
        reasoning_level: str,
        *,
        interval_s: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._conversation_id = conversation_id
        self._level = reasoning_level
        self._interval_s = interval_s
        self._clock = clock
        self._row_id: int | None = None
        self._last_flush = clock()
        self._dirty = False
        self._thinking_since: float | None = None
        self._analysis_done = False
        self.row_ids: list[int] = []
        self._shown: list[str] = []  # visible text of the rows already finished
        self._open_row()

    # -- what the panel and the bubble need ----------------------------------------------------

    @property
    def current_row_id(self) -> int | None:
        return self._row_id

    @property
    def thinking(self) -> bool:
        return self._thinking_since is not None

    def visible_text(self) -> str:
        """What the user sees of this reply: answers and preambles, not reasoning or tool calls."""
        current = [self.content] if self._row_id is not None and self.recipient is None and self.content else []
        return "\n\n".join(self._shown + current)

    def thinking_seconds(self) -> float:
        """How long the current analysis has been going on (0 when not thinking)."""
        return self._clock() - self._thinking_since if self._thinking_since is not None else 0.0

    # -- events --------------------------------------------------------------------------------

    def start_message(self, channel: str | None, recipient: str | None, content_type: str | None) -> None:
        if self._row_id is None:
            self._open_row()
        if channel == "analysis":
            if self._thinking_since is None:
                self._thinking_since = self._clock()
            if self._analysis_done:
                self.reasoning += "\n\n"
                self._analysis_done = False
            return
        self._stop_thinking()
        self.channel, self.recipient, self.content_type = channel or "final", recipient, content_type
        self._dirty = True

    def add_text(self, channel: str | None, text: str) -> None:
        if self._row_id is None:
            self._open_row()
        if channel == "analysis":
            self.reasoning += text
        else:
            self._stop_thinking()
            self.content += text
        self._dirty = True
        self.flush_if_due()

    def finish_message(self, message: dict[str, Any]) -> None:
        """A message ended. Analysis stays with the row it leads to; any other message completes
        its row, and what comes next goes into a new one."""
        if message.get("channel") == "analysis":
            self._analysis_done = True
            return
        if self._row_id is None:
            self._open_row()
        self._stop_thinking()
        fields = stored_fields(message)
        self.channel, self.recipient, self.content_type, self.content = (
            fields["channel"] or "final", fields["recipient"], fields["content_type"], fields["content"],
        )
        self._write(status="complete")
        if self.recipient is None and self.content:
            self._shown.append(self.content)
        self._row_id = None

    def flush_if_due(self) -> bool:
        if self._dirty and self._row_id is not None and self._clock() - self._last_flush >= self._interval_s:
            self._write(status="streaming")
            return True
        return False

    def finish(self, status: str, *, detail: str | None = None, stats: dict[str, Any] | None = None) -> None:
        """The reply ended (`status` complete, cancelled or failed). A last row with nothing in
        it is removed, unless it must carry the reason the reply failed; `detail` and `stats` go
        on the reply's last row, also when its messages had all finished already."""
        self._stop_thinking()
        if self._row_id is not None and (self.content or self.reasoning or self.recipient or status == "failed"):
            self._write(status=status, detail=detail, stats=stats)
        else:
            if self._row_id is not None:
                self._store.delete_message(self._row_id)
                self.row_ids.remove(self._row_id)
            fields = {name: value for name, value in (("detail", detail), ("stats", stats)) if value is not None}
            if fields and self.row_ids:
                self._store.update_message(self.row_ids[-1], **fields)
        self._row_id = None

    # -- internals -----------------------------------------------------------------------------

    def _open_row(self) -> None:
        self.content = ""
        self.reasoning = ""
        self.channel: str = "final"
        self.recipient: str | None = None
        self.content_type: str | None = None
        self.thought_seconds: float | None = None
        self._analysis_done = False
        record = self._store.add_message(
            self._conversation_id, role="assistant", channel="final", status="streaming", reasoning_level=self._level
        )
        self._row_id = record.id
        self.row_ids.append(record.id)

    def _stop_thinking(self) -> None:
        if self._thinking_since is not None:
            self.thought_seconds = (self.thought_seconds or 0.0) + self._clock() - self._thinking_since
            self._thinking_since = None
            self._dirty = True

    def _write(self, *, status: str, detail: str | None = None, stats: dict[str, Any] | None = None) -> None:
        assert self._row_id is not None
        fields: dict[str, Any] = {
            "channel": self.channel,
            "recipient": self.recipient,
            "content_type": self.content_type,
            "content": self.content,
            "reasoning": self.reasoning,
            "thought_seconds": self.thought_seconds,
            "status": status,
        }
        if detail is not None:
            fields["detail"] = detail
        if stats is not None:
            fields["stats"] = stats
        self._store.update_message(self._row_id, **fields)
        self._last_flush = self._clock()
        self._dirty = False
