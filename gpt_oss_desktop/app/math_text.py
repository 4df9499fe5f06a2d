"""Math in model output: where it is ($…$, $$…$$, \\(…\\), \\[…\\]) and what it looks like.

The TeX is typeset by matplotlib's mathtext (a well-kept TeX-subset renderer with its own
fonts, no LaTeX install needed) into a PNG, which the message view shows as an inline image.
Qt's rich text cannot show MathML, so converting to MathML (latex2mathml) would not display.
Qt-free, so the scanning rules are testable on their own.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache

# Order matters: code spans and escaped dollars are kept as they are, display math before inline.
_MATH = re.compile(
    r"(?P<code>(?P<ticks>`+).+?(?P=ticks))"
    r"|(?P<escaped>\\\$)"
    r"|\$\$(?P<dollars_display>.+?)\$\$"
    r"|\\\[(?P<bracket_display>.+?)\\\]"
    r"|\\\((?P<paren_inline>.+?)\\\)"
    # $…$ as pandoc reads it: no space inside either dollar, and no digit right after the
    # closing one, so "costs $5 and $10" stays text.
    r"|(?<![\\$\w])\$(?P<dollar_inline>[^\s$](?:[^$\n]*?[^\s$\\])?)\$(?!\d)",
    re.DOTALL,
)


@dataclass(frozen=True)
class MathSpan:
    start: int
    end: int
    tex: str
    display: bool


def find_math(text: str) -> list[MathSpan]:
    """The math in `text` (outside `code` spans), in order."""
    spans = []
    for match in _MATH.finditer(text):
        for group, display in (("dollars_display", True), ("bracket_display", True),
                               ("paren_inline", False), ("dollar_inline", False)):
            tex = match.group(group)
            if tex is not None and tex.strip():
                spans.append(MathSpan(match.start(), match.end(), tex.strip(), display))
    return spans


@dataclass(frozen=True)
class MathImage:
    """A typeset formula: PNG bytes at `scale` pixels per point, and where its baseline is."""

    png: bytes
    width_pt: float
    height_pt: float
    depth_pt: float  # from the bottom edge up to the baseline


class MathError(ValueError):
    """TeX that mathtext cannot typeset; the message says why."""


@lru_cache(maxsize=1024)
def typeset(tex: str, *, point_size: float, colour: str, scale: float = 2.0) -> MathImage:
    """`tex` (without delimiters) typeset at `point_size` in `colour` on a transparent
    background. Cached: a streaming reply re-renders its text many times a second."""
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    source = f"${tex}$"
    font = FontProperties(size=point_size)
    try:
        width, height, depth, _, _ = MathTextParser("path").parse(source, dpi=72, prop=font)
        figure = Figure(figsize=(width / 72.0, height / 72.0))
        figure.text(0, depth / height, source, fontproperties=font, color=colour)
        buffer = io.BytesIO()
        figure.savefig(buffer, dpi=72 * scale, format="png", transparent=True)
    except (ValueError, RuntimeError) as error:
        raise MathError(" ".join(str(error).split()) or "mathtext cannot typeset this") from error
    return MathImage(buffer.getvalue(), width, height, depth)
