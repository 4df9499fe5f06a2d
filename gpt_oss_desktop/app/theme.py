"""Light and dark palettes that follow the system, the stylesheet built from them, and icons
recoloured to match.

The stylesheet lives in assets/style.qss with `$name` placeholders for the palette's colours.
Widgets that draw their own rich text (messages, code, reasoning) read `palette()` and listen to
`watcher().changed` to redraw when macOS switches between light and dark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from string import Template

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QIcon, QPixmap
from PySide6.QtWidgets import QApplication

from .paths import asset


@dataclass(frozen=True)
class Palette:
    name: str
    window: str
    sidebar: str
    toolbar: str
    border: str
    text: str
    muted: str
    accent: str
    accent_text: str
    selection: str
    user_bubble: str
    code_background: str
    code_header: str
    reasoning_background: str
    reasoning_text: str
    danger: str
    input_background: str
    code_style: str  # a pygments style


LIGHT = Palette(
    name="light", window="#ffffff", sidebar="#f3f3f6", toolbar="#fbfbfc", border="#e2e2e7", text="#1d1d1f",
    muted="#86868b", accent="#007aff", accent_text="#ffffff", selection="#dce9ff", user_bubble="#eff1f5",
    code_background="#f7f8fa", code_header="#eceef2", reasoning_background="#faf9f6", reasoning_text="#55565b",
    danger="#d70015", input_background="#ffffff", code_style="xcode",
)
DARK = Palette(
    name="dark", window="#1e1e20", sidebar="#28282b", toolbar="#2a2a2d", border="#3a3a3d", text="#f2f2f4",
    muted="#9a9aa0", accent="#0a84ff", accent_text="#ffffff", selection="#1d3a60", user_bubble="#2f2f33",
    code_background="#161618", code_header="#232326", reasoning_background="#232325", reasoning_text="#b9b9bf",
    danger="#ff453a", input_background="#2a2a2d", code_style="github-dark",
)


class ThemeWatcher(QObject):
    """Re-applies the theme when the system switches appearance and tells the widgets."""

    changed = Signal(object)  # the new Palette

    def __init__(self) -> None:
        super().__init__()
        self.palette = LIGHT

    def apply(self, forced: Palette | None = None) -> Palette:
        """Style the app for the system's appearance (or `forced`, for previews and tests)."""
        hints = QGuiApplication.styleHints()
        self.palette = forced or (DARK if hints.colorScheme() == Qt.ColorScheme.Dark else LIGHT)
        app = QApplication.instance()
        if app is not None:
            app.setStyleSheet(stylesheet(self.palette))
        self.changed.emit(self.palette)
        return self.palette


@cache
def watcher() -> ThemeWatcher:
    """The one watcher; the first call hooks it to the system's colour-scheme changes."""
    theme = ThemeWatcher()
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: theme.apply())
    return theme


def palette() -> Palette:
    return watcher().palette


def stylesheet(colours: Palette) -> str:
    return Template(asset("style.qss").read_text(encoding="utf-8")).substitute(asdict(colours))


def app_icon() -> QIcon:
    return QIcon(str(asset("app-icon.svg")))


def icon(name: str, colour: str | None = None) -> QIcon:
    """assets/icons/<name>.svg drawn in `colour` (the palette's text colour by default)."""
    return QIcon(_pixmap(name, colour or palette().text))


@cache
def _pixmap(name: str, colour: str) -> QPixmap:
    svg = asset(f"icons/{name}.svg").read_text(encoding="utf-8").replace("currentColor", colour)
    pixmap = QPixmap()
    if not pixmap.loadFromData(svg.encode(), "svg"):
        raise ValueError(f"assets/icons/{name}.svg is not a valid SVG")
    return pixmap
