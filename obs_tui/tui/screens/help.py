"""The help screen: every key, htop/btop style."""

from __future__ import annotations

import textwrap

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("q  F10  Ctrl+C", "quit"),
    ("? / F1", "this help"),
    ("/", "filter the focused pane (Enter keeps it, Esc clears)"),
    ("< >  F6", "sort by the previous / next column; or click a column's header"),
    ("I", "reverse the sort (a second click on the same header does too)"),
    ("space", "pause / resume updates"),
    ("Enter", "detail screen for the selected row"),
    ("Tab / Shift+Tab", "move between panes"),
    ("1 2 3 4", "maximise a pane (press again to restore)"),
    (
        "T",
        "next theme (dark, light, mono, then yours); the theme and the sorts are remembered for the next run",
    ),
    ("i / u", "read-only mode: next / previous host of the fleet (all hosts first)"),
    ("↑ ↓ PgUp PgDn", "move the selection; Home / End jump"),
    ("Esc", "close a screen, clear the filter, restore the layout"),
    ("[ ]  { }", "replay: back / forward one tick, one minute (from history)"),
    ("g  L", "replay: go to a time (14:05, -10m, ISO 8601); back to live"),
    ("c  C", "what changed against 1 h before the frame shown / a chosen time"),
]

PANES = [
    ("1 Power", "processes: CPU, memory; watts and joules once a power source exists"),
    ("2 Requests", "RED per service from eBPF: rate, errors (5xx), p50/p95/p99"),
    (
        "3 SLO",
        "budget left, burn rates 5m/1h/6h/3d and firing alerts of configured, file and "
        "discovered SLOs (Prometheus); Enter: every window and the PromQL",
    ),
    ("4 Carbon", "gCO2e per process from power, grid intensity and PUE"),
]


def _rows(pairs: list[tuple[str, str]], style: str, columns: int) -> list[str]:
    """Key and description side by side; long descriptions wrap under their own column."""
    width = max(len(k) for k, _ in pairs)
    indent = " " * (width + 4)
    lines = []
    for key, text in pairs:
        wrapped = textwrap.wrap(text, max(columns - len(indent), 20)) or [""]
        lines.append(f"  [{style}]{key.ljust(width)}[/]  {wrapped[0]}")
        lines += [indent + more for more in wrapped[1:]]
    return lines


def help_markup(columns: int = 92) -> str:
    """The help text for a box `columns` cells wide (inside its border and padding)."""
    lines = ["[b]Keys[/b]", ""]
    lines += _rows(KEYS, "b $accent", columns)
    lines += ["", "[b]Panes[/b]", ""]
    lines += _rows(PANES, "b", columns)
    footer = (
        "Badges in the header: live = measured, estimate = modelled, off = not available "
        "(the pane says why). obs-tui doctor explains what works on this host and why not. "
        "To select text with the mouse, start with --no-mouse (or hold Shift)."
    )
    lines += [""] + textwrap.wrap(footer, columns)
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: auto; max-width: 96%; height: auto; max-height: 96%;
        border: round $border; border-title-style: bold;
        background: $surface; padding: 0 1;
    }
    HelpScreen Static { width: auto; }
    """
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "close", show=False),
    ]

    def compose(self) -> ComposeResult:
        box = VerticalScroll()
        box.border_title = "obs-tui help"
        box.border_subtitle = "Esc to close"
        with box:
            # 96 % of the screen, less the border (2), padding (2) and scrollbar (2)
            yield Static(help_markup(min(92, int(self.app.size.width * 0.96) - 6)))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
