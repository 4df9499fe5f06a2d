"""One streaming reply, written to the store while it streams, and kept in memory until it is.

The engine's events arrive token by token; writing each would cost a transaction per token, so
the text is kept in memory and written at most every `interval_s` (and at every message
boundary). A kill loses at most that interval. Every row of the reply is held here until the
store has it, so a failed write (a full disk, a read-only or locked file) loses nothing: `error`
says why it is not saved, and the next `sync()` (the session retries on a timer and before its
next write) writes all of it, in order.

A row stays "streaming" until the reply ends, also once its message is whole, so a kill between
two messages of a reply is found at the next start like a kill inside one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .store import MessageRecord, Store, StoreError
from .transcript import stored_fields

FLUSH_INTERVAL_S = 0.25
_FIXED = frozenset({"role", "author_name"})  # set when a row is inserted, never updated


@dataclass
class _Row:
    """One message of the reply as it should be on disk; `id` is None until it is inserted."""

    fields: dict[str, Any]
    started_at: float
    id: int | None = None
    dirty: bool = True


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
        self.conversation_id = conversation_id
        self._level = reasoning_level
        self._interval_s = interval_s
        self._clock = clock
        self._rows: list[_Row] = []
        self._dropped: list[int] = []  # ids of rows to delete from the store
        self._current: _Row | None = None
        self._last_flush = clock()
        self._dirty = False
        self._thinking_since: float | None = None
        self._analysis_done = False
        self._calling = False  # the message streaming now is a tool call
        self._shown: list[str] = []  # visible text of the rows already finished
        self.error: str | None = None  # why some of the reply is not on disk; None when all is
        self._open_row()
        self.sync()

    # -- what the panel and the bubble need ----------------------------------------------------

    @property
    def current_row_id(self) -> int | None:
        return self._current.id if self._current is not None else None

    @property
    def row_ids(self) -> list[int | None]:
        return [row.id for row in self._rows]

    @property
    def thinking(self) -> bool:
        return self._thinking_since is not None

    @property
    def saved(self) -> bool:
        return not self._dropped and all(row.id is not None and not row.dirty for row in self._rows)

    def visible_text(self) -> str:
        """What the user sees of this reply: answers and preambles, not reasoning or tool calls."""
        current = [self.content] if self._current is not None and self.recipient is None and self.content else []
        return "\n\n".join(self._shown + current)

    def thinking_seconds(self) -> float:
        """How long the current analysis has been going on (0 when not thinking)."""
        return self._clock() - self._thinking_since if self._thinking_since is not None else 0.0

    def records(self, after_position: int) -> list[MessageRecord]:
        """The reply as the chat view reads stored messages, from memory: what is shown while
        some of it is not on disk (a row never inserted gets a negative id), with the reason."""
        note = f"Not saved yet: {self.error}" if self.error else None
        records = []
        for index, row in enumerate(self._rows):
            fields = row.fields
            detail = " ".join(part for part in (fields.get("detail"), note) if part) or None
            records.append(MessageRecord(
                id=row.id if row.id is not None else -(index + 1), conversation_id=self.conversation_id,
                position=after_position + 1 + index, role=fields.get("role", "assistant"),
                author_name=fields.get("author_name"), attachments=fields.get("attachments"),
                channel=fields["channel"], recipient=fields["recipient"], content_type=fields["content_type"],
                content=fields["content"], reasoning=fields["reasoning"],
                reasoning_level=self._level if fields.get("role", "assistant") == "assistant" else None,
                started_at=row.started_at, thought_seconds=fields["thought_seconds"], stats=fields.get("stats"),
                status=fields["status"], detail=detail,
            ))
        return records

    # -- events --------------------------------------------------------------------------------

    def start_message(self, channel: str | None, recipient: str | None, content_type: str | None) -> None:
        """Analysis without a recipient is reasoning; a message with one (the built-in tools are
        called on the analysis channel) is a call and gets its own row."""
        if self._current is None:
            self._open_row()
        self._calling = recipient is not None
        if channel == "analysis" and not self._calling:
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
        if self._current is None:
            self._open_row()
        if channel == "analysis" and not self._calling:
            self.reasoning += text
        else:
            self._stop_thinking()
            self.content += text
        self._dirty = True
        self.flush_if_due()

    def finish_message(self, message: dict[str, Any]) -> None:
        """A message ended. Analysis stays with the row it leads to; any other message completes
        its row, and what comes next goes into a new one. A message the engine closed as
        incomplete (the reply was cut) keeps its row open: `finish` says how the reply ended."""
        self._calling = False
        if message.get("channel") == "analysis" and not message.get("recipient"):
            self._analysis_done = True
            return
        if self._current is None:
            self._open_row()
        self._stop_thinking()
        fields = stored_fields(message)
        self.channel, self.recipient, self.content_type, self.content = (
            fields["channel"] or "final", fields["recipient"], fields["content_type"], fields["content"],
        )
        if message.get("status") == "incomplete":
            self._dirty = True
            return
        self._write(status="streaming")
        if self.recipient is None and self.content:
            self._shown.append(self.content)
        self._current = None

    def add_tool_result(self, *, author_name: str, channel: str | None, recipient: str, content: str,
                        stats: dict[str, Any], attachments: dict[str, Any] | None) -> None:
        """A tool answered a call of this reply: a complete row of its own, after the call's."""
        if self._current is not None:  # what was open (never the call, which ended its row) stays before it
            self._stage(status="streaming")
            self._current = None
        fields = {"role": "tool", "author_name": author_name, "channel": channel, "recipient": recipient,
                  "content_type": None, "content": content, "reasoning": "", "thought_seconds": None,
                  "status": "complete", "stats": stats}
        if attachments:
            fields["attachments"] = attachments
        self._rows.append(_Row(fields, started_at=time.time()))
        self.sync()

    def flush_if_due(self) -> bool:
        if self._dirty and self._current is not None and self._clock() - self._last_flush >= self._interval_s:
            self._write(status="streaming")
            return True
        return False

    def finish(self, status: str, *, detail: str | None = None, stats: dict[str, Any] | None = None) -> None:
        """The reply ended (`status` complete, cancelled or failed). A last row with nothing in
        it is removed, unless it must carry the reason the reply failed; the status, `detail`
        and `stats` go on the reply's last row (a stop between two messages marks the last
        whole one), and the rows before it are complete."""
        self._stop_thinking()
        current = self._current
        if current is not None and not (self.content or self.reasoning or self.recipient or status == "failed"):
            self._rows.remove(current)
            if current.id is not None:
                self._dropped.append(current.id)
        elif current is not None:
            self._stage(status="streaming")
        self._current = None
        if self._rows:
            last = self._rows[-1]
            last.fields["status"] = status
            if detail is not None:
                last.fields["detail"] = detail
            last.dirty = True
            if stats is not None:  # the reply's figures, never over a tool result's own
                answered = next((row for row in reversed(self._rows) if row.fields.get("role", "assistant") == "assistant"),
                                last)
                answered.fields["stats"] = stats
                answered.dirty = True
            for row in self._rows[:-1]:
                if row.fields["status"] != "complete":
                    row.fields["status"] = "complete"
                    row.dirty = True
        self.sync()

    def sync(self) -> bool:
        """Write whatever the store does not have yet, in order; True once it has all of it."""
        try:
            while self._dropped:
                self._store.delete_message(self._dropped[0])
                self._dropped.pop(0)
            for row in self._rows:
                if row.id is None:
                    fields = {"role": "assistant", "reasoning_level": self._level, **row.fields}
                    if fields["role"] == "tool":
                        fields["reasoning_level"] = None
                    row.id = self._store.add_message(self.conversation_id, **fields).id
                elif row.dirty:
                    self._store.update_message(row.id, **{k: v for k, v in row.fields.items() if k not in _FIXED})
                row.dirty = False
        except StoreError as error:
            self.error = str(error)
            return False
        self.error = None
        return True

    # -- internals -----------------------------------------------------------------------------

    def _open_row(self) -> None:
        self.content = ""
        self.reasoning = ""
        self.channel: str = "final"
        self.recipient: str | None = None
        self.content_type: str | None = None
        self.thought_seconds: float | None = None
        self._analysis_done = False
        self._current = _Row(self._fields("streaming"), started_at=time.time())
        self._rows.append(self._current)

    def _stop_thinking(self) -> None:
        if self._thinking_since is not None:
            self.thought_seconds = (self.thought_seconds or 0.0) + self._clock() - self._thinking_since
            self._thinking_since = None
            self._dirty = True

    def _fields(self, status: str) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "recipient": self.recipient,
            "content_type": self.content_type,
            "content": self.content,
            "reasoning": self.reasoning,
            "thought_seconds": self.thought_seconds,
            "status": status,
        }

    def _stage(self, *, status: str) -> None:
        """The current row's fields as they are now, to be written."""
        assert self._current is not None
        self._current.fields.update(self._fields(status))
        self._current.dirty = True
        self._last_flush = self._clock()
        self._dirty = False

    def _write(self, *, status: str) -> None:
        self._stage(status=status)
        self.sync()
