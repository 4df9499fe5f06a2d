"""Reading a harmony message header (the decoded text between `<|start|>` and `<|message|>`).

It reads exactly as openai-harmony's parser does, both orders of recipient and channel included
(`assistant to=x<|channel|>commentary` as rendered, `<|channel|>commentary to=x` as the model
writes it). Where the library raises, the reader makes the best of the header and lists the
problem instead, so the caller decides between raising (strict) and warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .messages import ROLES

CHANNEL_MARKER = "<|channel|>"
CONSTRAIN_MARKER = "<|constrain|>"

# Rust's char::is_whitespace (Unicode White_Space), which trim() and the channel's end use; it is
# narrower than Python's str.isspace (no U+001C..U+001F).
_RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
# The header's words are split on ASCII whitespace only (Rust's split_ascii_whitespace).
_ASCII_WHITESPACE = re.compile(r"[ \t\n\x0c\r]+")


@dataclass(frozen=True)
class Header:
    role: str
    name: str | None = None
    recipient: str | None = None
    channel: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class HeaderReading:
    header: Header
    leftover: str | None
    """Words that are not header fields (the library raises on them, or takes them as content)."""
    problems: tuple[str, ...]
    """What openai-harmony raises on in this header; the reading above made the best of it."""


def read_header(text: str, role: str | None, *, fields_after_role: bool = True) -> HeaderReading:
    """Channel, author, recipient and content type of a header.

    `role` is the role already known (the first message of a completion, after
    `<|start|>assistant`); None reads it from the header. With `fields_after_role=False` the
    words after the role are all leftover: the library's reading of a header that never got its
    `<|message|>`, whose words are the message's text.
    """
    problems: list[str] = []
    channel = None
    marker_at = text.find(CHANNEL_MARKER)
    if marker_at >= 0:
        after = text[marker_at + len(CHANNEL_MARKER) :]
        if not after or after[0] == "<" or after[0] in _RUST_WHITESPACE:
            problems.append("channel marker present but no channel value found in header")
            # The recovery reads the next word, so `<|channel|> final` still means final.
            after = after.lstrip(_RUST_WHITESPACE)
        end = next(
            (i for i, c in enumerate(after) if c in _RUST_WHITESPACE or c == "<"), len(after)
        )
        channel = after[:end] or None
        text = text[:marker_at] + after[end:]
    text = text.strip(_RUST_WHITESPACE)
    if CONSTRAIN_MARKER in text:
        # `to=x<|constrain|>json` still splits into recipient and content type.
        text = text.replace(CONSTRAIN_MARKER, " " + CONSTRAIN_MARKER).strip(_RUST_WHITESPACE)
    words = [word for word in _ASCII_WHITESPACE.split(text) if word]

    author_word = None
    if role is None:
        if not words:
            problems.append("message header did not contain a role")
            role = "assistant"
        else:
            author_word = words[0]
            if author_word in ROLES:
                role = author_word
            else:
                # Not a role: the name of a tool speaking. The library accepts that only when more
                # words (a recipient) follow.
                if len(words) == 1 and not author_word.startswith("to="):
                    problems.append(f"Unknown role: {author_word}")
                words.pop(0)
                role = "tool"
    if words and words[0] == role:
        words.pop(0)

    recipient = content_type = None
    if fields_after_role and words:
        count = len(words)
        last = words.pop()
        if last.startswith("to="):
            recipient = last[3:]
        elif count == 1 and not last.startswith(CONSTRAIN_MARKER):
            recipient = last
        else:
            content_type = last
            if words:
                raw = words.pop()
                recipient = raw[3:] if raw.startswith("to=") else raw
    header = Header(
        role=role,
        name=author_word if role == "tool" else None,
        recipient=recipient,
        channel=channel,
        content_type=content_type,
    )
    return HeaderReading(header, " ".join(words) if words else None, tuple(problems))
