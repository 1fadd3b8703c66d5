"""Compare: each service or process then and now, biggest movers first (analysis/compare.py
makes the rows; this only formats them)."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from obs_tui.analysis.compare import Change, compare
from obs_tui.history.timeline import label_time
from obs_tui.model import Frame
from obs_tui.tui import fmt

COLUMNS = (
    ("rps", fmt.num),
    ("err %", lambda v: fmt.pct(v)),
    ("p99", fmt.ms),
    ("W", fmt.num),
    ("g/h", lambda v: fmt.num(v, 2)),
)
NAME_WIDTH, CELL_WIDTH = 16, 17


def _signed(delta: float | None, shown) -> str:
    if delta is None or abs(delta) < 1e-9:
        return ""
    text = shown(abs(delta))
    return f"[$error]+{text}[/]" if delta > 0 else f"[$success]-{text}[/]"


def _cell(change: Change, i: int, shown) -> str:
    then, now = change.then[i], change.now[i]
    if then is None and now is None:
        return fmt.DASH
    return f"{shown(now) if now is not None else 'gone'} {_signed(change.delta(i), shown)}"


def compare_markup(then: Frame, now: Frame) -> str:
    rows = compare(then, now)
    at = time.strftime("%H:%M:%S", time.localtime(label_time(then)))
    shown_at = time.strftime("%H:%M:%S", time.localtime(label_time(now)))
    head = f"{'':<{NAME_WIDTH}}" + "".join(f"{name:>{CELL_WIDTH}}" for name, _ in COLUMNS)
    lines = [f"[b]{shown_at}[/] against [b]{at}[/]: now, and the change since", "", f"[b]{head}[/]"]
    for change in rows:
        name = escape(fmt.truncate(f"{change.name} {change.key}", NAME_WIDTH - 1))
        cells = "".join(_pad(_cell(change, i, shown)) for i, (_, shown) in enumerate(COLUMNS))
        lines.append(f"{name:<{NAME_WIDTH}}{cells}")
    if not rows:
        lines.append("nothing measured in either frame")
    return "\n".join(lines)


def _pad(markup: str) -> str:
    from textual.content import Content

    plain = len(Content.from_markup(markup).plain)
    return " " * max(CELL_WIDTH - plain, 1) + markup


class CompareScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > VerticalScroll {
        width: auto; max-width: 98%; height: auto; max-height: 96%;
        border: round $border; border-title-style: bold; background: $surface; padding: 0 1;
    }
    CompareScreen Static { width: auto; }
    """
    BINDINGS = [Binding("escape,q,c", "close", "close", show=False)]

    def __init__(self, then: Frame, now: Frame) -> None:
        super().__init__()
        self.then, self.now = then, now

    def compose(self) -> ComposeResult:
        box = VerticalScroll()
        box.border_title = "what changed"
        box.border_subtitle = "Esc to close"
        with box:
            yield Static(compare_markup(self.then, self.now), id="compare")

    def action_close(self) -> None:
        self.dismiss(None)
