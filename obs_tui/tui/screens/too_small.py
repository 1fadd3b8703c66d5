"""Shown instead of the panes when the terminal is smaller than usable."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 60, 16


def too_small(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class TooSmallScreen(Screen[None]):
    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; }
    TooSmallScreen > Static { width: auto; height: auto; text-align: center; color: $warning; }
    """
    BINDINGS = [("q", "app.quit", "quit")]

    def compose(self) -> ComposeResult:
        yield Static(id="msg")

    def on_mount(self) -> None:
        self.update_size()

    def on_resize(self) -> None:
        self.update_size()

    def update_size(self) -> None:
        w, h = self.app.size
        self.query_one("#msg", Static).update(notice(w, h))


def notice(width: int, height: int) -> str:
    """The longest wording whose every line fits width x height (down to 10x1)."""
    need = f"{MIN_WIDTH}x{MIN_HEIGHT}"
    wordings = [
        [
            f"Terminal too small: {width}x{height}",
            f"obs-tui needs at least {need}.",
            "Enlarge the window, or q to quit.",
        ],
        [f"Too small: {width}x{height}", f"needs {need}", "enlarge, or q"],
        [f"{width}x{height} < {need}"],
        [f"need {need}"],
    ]
    for lines in wordings:
        if len(lines) <= height and max(len(line) for line in lines) <= width:
            return "\n".join(lines)
    return wordings[-1][0]
