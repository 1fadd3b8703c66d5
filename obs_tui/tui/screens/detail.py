"""The detail screen of one row: its fields, charts of its kept history, maybe a sub-table.

It asks its pane for a fresh DetailSpec on every frame (only while it is the screen shown),
so the charts move; everything else behind it is left alone until it closes.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Sparkline

from obs_tui.tui.fmt import escape, escape_lines
from obs_tui.tui.panes.base import Chart, DetailSpec
from obs_tui.tui.table import KeyedTable
from obs_tui.tui.widgets import TextBlock, TextLine


def fields_markup(spec: DetailSpec) -> str:
    width = max((len(k) for k, _ in spec.fields), default=0)
    return "\n".join(f"[$text-muted]{escape(k.ljust(width))}[/]  {escape(v)}" for k, v in spec.fields)


def chart_label(chart: Chart) -> str:
    values = [v for v in chart.values if v is not None]
    if not values:
        return f"[b]{escape(chart.label)}[/]  [$text-muted]no history yet[/]"
    return (
        f"[b]{escape(chart.label)}[/]  now {escape(chart.unit(values[-1]))}"
        f"  [$text-muted]max[/] {escape(chart.unit(max(values)))}"
        f"  [$text-muted]{len(chart.values)} samples[/]"
    )


class DetailScreen(Screen[None]):
    DEFAULT_CSS = """
    DetailScreen { layout: vertical; }
    DetailScreen > #detail-title { background: $panel; color: $foreground; text-style: bold; padding: 0 1; }
    DetailScreen > #detail-top { height: auto; max-height: 60%; }
    DetailScreen #detail-fields {
        width: auto; max-width: 65%; height: auto; padding: 0 1; border: round $border-blurred;
    }
    DetailScreen #detail-charts {
        width: 1fr; height: auto; padding: 0 1; border: round $border-blurred;
    }
    DetailScreen .chart-label { color: $foreground; }
    DetailScreen Sparkline { height: 2; margin-bottom: 0; }
    DetailScreen Sparkline > .sparkline--max-color { color: $accent; }
    DetailScreen Sparkline > .sparkline--min-color { color: $primary; }
    DetailScreen > #detail-table-box { height: 1fr; border: round $border-blurred; }
    DetailScreen > #detail-note { color: $text-muted; padding: 0 1; max-height: 8; }
    DetailScreen > #detail-keys { color: $text-muted; padding: 0 1; dock: bottom; }
    """
    BINDINGS = [
        Binding("escape,q,backspace", "close", "back", show=False),
    ]

    def __init__(self, spec_fn: Callable[[], DetailSpec | None], first: DetailSpec) -> None:
        super().__init__()
        self.spec_fn = spec_fn
        self.spec = first

    def compose(self) -> ComposeResult:
        spec = self.spec
        yield TextLine(escape(spec.title), id="detail-title")
        with Horizontal(id="detail-top"):
            fields = TextBlock(fields_markup(spec), id="detail-fields")
            fields.border_title = "fields"
            yield fields
            charts = Vertical(id="detail-charts")
            charts.border_title = "history"
            with charts:
                for chart in spec.charts:
                    yield TextLine(chart_label(chart), classes="chart-label")
                    yield Sparkline([v or 0.0 for v in chart.values], summary_function=max)
        if spec.columns:
            box = Vertical(id="detail-table-box")
            box.border_title = spec.table_title
            with box:
                yield KeyedTable(spec.columns, id="detail-table")
        yield TextBlock(escape_lines(spec.note), id="detail-note")
        yield TextLine("[b]Esc[/b] back   [b]q[/b] back   [b]↑↓[/b] move", id="detail-keys")

    def on_mount(self) -> None:
        self._apply(self.spec)
        tables = self.query(KeyedTable)
        if tables:
            tables.first().focus()

    def _apply(self, spec: DetailSpec) -> None:
        self.query_one("#detail-fields", TextBlock).update(fields_markup(spec))
        labels = list(self.query(".chart-label").results(TextLine))
        lines = list(self.query(Sparkline))
        for chart, label, line in zip(spec.charts, labels, lines):
            label.set(chart_label(chart))
            data = [v or 0.0 for v in chart.values]
            if data != line.data:
                line.data = data
        tables = self.query(KeyedTable)
        if tables:
            table = tables.first()
            table.sync(spec.rows[: max(table.capacity, 0)])
        self.query_one("#detail-note", TextBlock).update(escape_lines(spec.note))

    def update_frame(self) -> None:
        """Called by the app for each new frame while this screen is shown."""
        spec = self.spec_fn()
        if spec is None:
            self.query_one("#detail-note", TextBlock).update(
                "this row is gone from the latest frame; showing its last values"
            )
            return
        self.spec = spec
        self._apply(spec)

    def on_resize(self) -> None:
        self.call_after_refresh(self._apply, self.spec)

    def action_close(self) -> None:
        self.app.pop_screen()
