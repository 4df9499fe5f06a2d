"""Byte counts as people read them: one rule for the app, the terminal chat and error messages."""

from __future__ import annotations

GIB = 1024**3


def format_bytes(count: int | float) -> str:
    """Sizes as Finder shows them (decimal units: 13.8 GB)."""
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
