"""The pane base: a bordered box with a summary line, a notice and a KeyedTable.

A pane turns a Frame into rows: `items` picks its section, the pane filters and sorts the
items (cheap: plain Python over tuples), cuts them to the rows that fit, and only then builds
cell text for those rows. What is missing is said in the notice, never papered over.

Subclasses set NUMBER, TITLE, COLUMNS, SORTS and implement items/key/cells/summary/notice/detail,
queries without side effects; what a frame changes beyond the rows goes in the command `adapt`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical

from obs_tui.analysis.compare import Change
from obs_tui.model import Frame
from obs_tui.text import printable
from obs_tui.tui import fmt
from obs_tui.tui.fmt import escape
from obs_tui.tui.history import History
from obs_tui.tui.table import Cell, Column, KeyedTable
from obs_tui.tui.widgets import TextBlock, TextLine

# How each of compare's metrics (analysis.compare.METRICS) is written in a change column.
# A change is shown at the precision of the figure it is beside (W as in the W column, g/h
# in g or mg as in the g/h column)
CHANGE_FORMATS: tuple[Callable[[float], str], ...] = (
    fmt.num,
    fmt.pct,
    fmt.ms,
    fmt.watts,
    fmt.grams,
)


@dataclass
class Chart:
    label: str
    values: list[float | None]
    unit: Callable[[float | None], str]


@dataclass
class DetailSpec:
    """What a detail screen shows for one row: fields, charts of its history, maybe a table."""

    title: str
    fields: list[tuple[str, str]]
    charts: list[Chart] = field(default_factory=list)
    table_title: str = ""
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[Hashable, tuple[Cell, ...]]] = field(default_factory=list)
    note: str = ""


def tone_for(value: float | None, warn: float, error: float) -> str:
    if value is None:
        return "muted"
    if value >= error:
        return "error"
    if value >= warn:
        return "warn"
    return ""


def source_reason(frame: Frame, source: str, capability: str | None = None) -> tuple[str, str]:
    """(mode, reason) for a source, falling back to the capability and then 'not built yet'."""
    status = frame.source(source)
    if status is not None:
        reason = status.reason
        if status.stale:
            return "stale", reason or "last sample failed"
        if status.mode == "off" and not reason and capability:
            cap = frame.capability(capability)
            reason = cap.reason if cap is not None else ""
        return status.mode, reason
    if capability:
        cap = frame.capability(capability)
        if cap is not None and not cap.ok:
            return "off", cap.reason
    return "off", ""


class Pane(Vertical, can_focus=True):
    NUMBER = 0
    TITLE = ""
    COLUMNS: list[Column] = []
    # column key -> (sort value of an item, descending by default?)
    SORTS: dict[str, tuple[Callable[[Any], Any], bool]] = {}
    DEFAULT_SORT = ""
    FILTER_HINT = "name"
    # compare's change columns: column key -> index in analysis.compare.METRICS; the first
    # one sorts by how much the row moved over every metric (the biggest movers)
    CHANGES: dict[str, int] = {}

    DEFAULT_CSS = """
    Pane {
        border: round $border-blurred;
        border-title-color: $foreground;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        padding: 0;
        height: 1fr;
        width: 1fr;
    }
    Pane:focus-within { border: round $border; border-title-color: $accent; }
    Pane > .summary { color: $foreground; padding: 0 1; }
    Pane > .notice { color: $warning; padding: 0 1; height: auto; max-height: 3; }
    Pane > .notice.-off { color: $text-muted; }
    Pane.-nodata > KeyedTable { display: none; }
    Pane.-quiet > .notice { display: none; }
    Pane.-compact > KeyedTable, Pane.-compact > .notice { display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = f"{self.NUMBER} {self.TITLE}"
        self.frame: Frame | None = None
        self.history: History | None = None
        self.filter_text = ""
        self.row_offset = 0
        self.sort_col = self.DEFAULT_SORT
        self.sort_reverse = self.SORTS[self.DEFAULT_SORT][1] if self.SORTS else True
        self.total_rows = 0
        self.is_compact = False
        self._notice: str | None = None
        self._items: list[Any] = []
        self._pinned: list[Any] = []
        self._shown: list[Any] = []
        self._rank: dict[Hashable, int] = {}
        self.changes: dict[Hashable, Change] | None = None  # compare on: each row's change
        self._hidden: frozenset[str] = frozenset()
        self._sort_before: tuple[str, bool] | None = None

    def compose(self) -> ComposeResult:
        yield TextLine("starting…", classes="summary")
        yield TextBlock(classes="notice")
        yield KeyedTable(self.COLUMNS)

    def on_mount(self) -> None:
        self.hide(frozenset())
        self.table.set_sort(self.sort_col, self.sort_reverse)
        self._update_subtitle()
        self.add_class("-nodata", "-quiet")

    def on_focus(self) -> None:
        # The pane takes focus for Tab/1-4/click; the table takes it when it is shown.
        if not self.is_compact and not self.has_class("-nodata"):
            self.call_after_refresh(self._focus_table)

    def focus_inside(self) -> None:
        """Focus on the table when it is shown, else on the pane: at once, and one focus
        change (each restyles the pane), not the pane's and then its table's."""
        if not self.is_compact and not self.has_class("-nodata"):
            self.screen.set_focus(self.table)
        else:
            self.screen.set_focus(self)

    def _focus_table(self) -> None:
        """Focus on the table, unless the focus moved on meanwhile (a prompt opened since)."""
        if self.screen.focused is self:
            self.screen.set_focus(self.table)

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    @property
    def summary_line(self) -> TextLine:
        return self.query_one(".summary", TextLine)

    # ---- to implement ---------------------------------------------------------------------

    def adapt(self, frame: Frame) -> None:
        """Fit what the pane shows around its rows to the frame (columns hidden, a badge)."""

    def items(self, frame: Frame) -> list[Any] | None:
        """The pane's rows (any order), or None when its section is absent."""
        raise NotImplementedError

    def pinned_items(self, frame: Frame) -> list[Any]:
        """Rows always shown first, whatever the sort and the filter (the Power pane's Idle)."""
        return []

    def key(self, item: Any) -> Hashable:
        raise NotImplementedError

    def cells(self, item: Any) -> tuple[Cell, ...]:
        raise NotImplementedError

    def text(self, item: Any) -> str:
        """What the filter matches against."""
        raise NotImplementedError

    def summary(self, frame: Frame, items: list[Any] | None) -> str:
        raise NotImplementedError

    def notice(self, frame: Frame) -> tuple[str, bool]:
        """(markup, is_off) shown above the table; '' for none."""
        return "", False

    def detail(self, key: Hashable) -> DetailSpec | None:
        return None

    # ---- the update path ------------------------------------------------------------------

    def show(self, frame: Frame, history: History) -> None:
        """Take a new frame; repaint what is visible of this pane (and only what changed)."""
        self.frame, self.history = frame, history
        self.adapt(frame)
        items = self.items(frame)
        self.summary_line.set(self.summary(frame, items))
        if self.is_compact:
            return
        markup, off = self.notice(frame)
        if markup != self._notice:
            self._notice = markup
            notice = self.query_one(".notice", TextBlock)
            notice.update(markup)
            notice.set_class(off, "-off")
            self.set_class(not markup, "-quiet")
        if (items is None) != self.has_class("-nodata"):
            self.set_class(items is None, "-nodata")
            if items is not None and self.has_focus:
                self.call_after_refresh(self._focus_table)
        self._items = items or []
        self._pinned = self.pinned_items(frame) if items is not None else []
        self._render_rows()

    def _render_rows(self) -> None:
        table = self.table
        items = self._items
        if self.filter_text:
            needle = self.filter_text.lower()
            items = [i for i in items if needle in self.text(i).lower()]
        fn = self.sort_value(self.sort_col)
        if fn is not None:
            # Ties keep the place they had on screen (then new rows, in the order given), so
            # rows only move when their sort value really changed: one sort on (value, place).
            rank = self._rank
            far = len(rank)
            key = self.key
            sign = -1 if self.sort_reverse else 1
            items = sorted(
                items, key=lambda i: (fn(i), sign * rank.get(key(i), far)), reverse=self.sort_reverse
            )
        self.total_rows = len(items) + len(self._pinned)
        capacity = max((table.capacity or 0) - len(self._pinned), 0)
        self.row_offset = max(0, min(self.row_offset, max(len(items) - capacity, 0)))
        self._shown = self._pinned + items[self.row_offset : self.row_offset + capacity]
        keys = [self.key(i) for i in self._shown]
        self._rank = {k: n for n, k in enumerate(keys)}
        table.sync([(k, self.cells(i)) for k, i in zip(keys, self._shown)])

    # ---- compare's change columns ---------------------------------------------------------

    def hide(self, keys: frozenset[str]) -> None:
        """Hide these columns (and the change columns while compare is off)."""
        self._hidden = keys
        off = frozenset(self.CHANGES) if self.changes is None else frozenset()
        self.table.set_hidden(keys | off)

    def compare_with(self, changes: dict[Hashable, Change] | None) -> None:
        """Compare on (each row's change against the earlier frame) or off (None). Turning it
        on shows the change columns, kept before the others as the pane narrows, sorted by
        the biggest movers; turning it off brings back the sort from before."""
        was_on = self.changes is not None
        self.changes = changes
        if (changes is not None) == was_on or not self.CHANGES:
            return
        self.hide(self._hidden)
        self.table.keep_first(frozenset(self.CHANGES) if changes is not None else frozenset())
        if changes is not None:
            self._sort_before = (self.sort_col, self.sort_reverse)
            self.set_sort(next(iter(self.CHANGES)), True)
        elif self._sort_before is not None:
            self.set_sort(*self._sort_before)

    def change_cell(self, item: Any, column: str) -> Cell:
        """A row's change in one metric: signed, "new" or "gone"; "" when it did not move."""
        change = self.changes.get(self.key(item)) if self.changes is not None else None
        if change is None:
            return ""
        i = self.CHANGES[column]
        then, now = change.then[i], change.now[i]
        if then is None or now is None:
            return ("new", "muted") if now is not None else ("gone", "muted") if then is not None else ""
        delta = now - then
        shown = CHANGE_FORMATS[i](abs(delta))
        if abs(delta) < 1e-9 or not any(ch in "123456789" for ch in shown):
            return ""  # it did not move, or by less than the figure beside it shows
        text = ("+" if delta > 0 else "-") + shown
        return text if i == 0 else (text, "error" if delta > 0 else "ok")  # more requests: neither

    def sort_value(self, column: str) -> Callable[[Any], Any] | None:
        """How rows sort by this column (the change columns: by how much they moved)."""
        changes = self.changes
        if column in self.CHANGES and changes is not None:
            key, i = self.key, self.CHANGES[column]
            if column == next(iter(self.CHANGES)):
                return lambda item: c.score if (c := changes.get(key(item))) is not None else 0.0
            return lambda item: abs(c.delta(i) or 0.0) if (c := changes.get(key(item))) is not None else 0.0
        return self.SORTS.get(column, (None, True))[0]

    def rerender(self) -> None:
        """Re-run filter/sort/cut on the current frame (after a key press or a resize)."""
        if self.frame is not None and self.history is not None:
            if self.is_compact:
                return
            self._render_rows()

    SPARK_STEP = 3  # samples per sparkline cell: the trend text changes every third tick

    def spark(self, metric: str, key: Hashable, width: int, floor: float) -> str:
        """The kept history of (metric, key) as a sparkline of `width` cells.

        Each cell is the max of SPARK_STEP samples, aligned to the global frame count, so
        every row's sparkline changes text (and is repainted) only once per SPARK_STEP ticks.
        """
        if self.history is None:
            return " " * width
        series = self.history.get(metric, key)
        step = self.SPARK_STEP
        values = list(series)
        drop = self.history.frames % step
        if drop:
            values = values[:-drop]
        cells = []
        for end in range(len(values), 0, -step):
            chunk = [v for v in values[max(end - step, 0) : end] if v is not None]
            cells.append(max(chunk) if chunk else None)
            if len(cells) >= width:
                break
        cells.reverse()
        return fmt.spark(cells, width, floor)

    def selected_key(self) -> Hashable | None:
        return self.table.cursor_key

    # ---- interaction ----------------------------------------------------------------------

    def on_keyed_table_scroll(self, event: KeyedTable.Scroll) -> None:
        event.stop()
        capacity = self.table.capacity
        before = self.row_offset
        self.row_offset = max(0, min(self.row_offset + event.delta, max(self.total_rows - capacity, 0)))
        if self.row_offset != before:
            self._render_rows()

    def on_keyed_table_resized(self, event: KeyedTable.Resized) -> None:
        event.stop()
        self.rerender()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.row_offset = 0
        self._update_subtitle()
        self.rerender()

    def on_keyed_table_header_clicked(self, event: KeyedTable.HeaderClicked) -> None:
        event.stop()
        self.sort_by(event.column)

    def sort_by(self, column: str) -> None:
        """Sort by this column, in its usual direction; by the same column again: reversed
        (as a click on htop's header does)."""
        if column not in self.SORTS and not (column in self.CHANGES and self.changes is not None):
            return
        if column == self.sort_col:
            self.reverse_sort()
        else:
            self.set_sort(column, self.SORTS[column][1])

    def reverse_sort(self) -> None:
        """The same column the other way round (htop's I)."""
        if self.sort_value(self.sort_col) is not None:
            self.set_sort(self.sort_col, not self.sort_reverse)

    def set_sort(self, column: str, reverse: bool) -> None:
        self.sort_col, self.sort_reverse = column, reverse
        self.table.set_sort(column, reverse)
        self._update_subtitle()
        self.rerender()

    def cycle_sort(self, step: int) -> None:
        keys = [c.key for c in self.COLUMNS if c.key in self.SORTS]
        if not keys:
            return
        visible = set(self.table.visible_columns()) or set(keys)
        keys = [k for k in keys if k in visible] or keys
        i = keys.index(self.sort_col) if self.sort_col in keys else -1
        column = keys[(i + step) % len(keys)]
        self.set_sort(column, self.SORTS[column][1])

    def _update_subtitle(self) -> None:
        label = next((c.label for c in self.COLUMNS if c.key == self.sort_col), "")
        if self.CHANGES and self.sort_col == next(iter(self.CHANGES)):
            label = "biggest movers"
        parts = []
        if label:
            parts.append(f"sort {label}")
        if self.filter_text:
            parts.append(f"filter: {escape(printable(self.filter_text))}")
        self.border_subtitle = " · ".join(parts)

    def set_compact(self, compact: bool) -> None:
        if compact == self.is_compact:
            return
        self.is_compact = compact
        self.set_class(compact, "-compact")
        if not compact and self.frame is not None and self.history is not None:
            self.call_after_refresh(self.show, self.frame, self.history)
