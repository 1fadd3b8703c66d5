"""KeyedTable: a small table that repaints only the cells whose shown text changed.

Textual's DataTable repaints the whole widget on every `update_cell` (and re-renders every
visible row), which is what made a diffing four-table app cost 4.8 % CPU and 12 KB/s. This
widget keeps rows keyed (by pid, service, SLO name), holds only the rows that fit on screen
(the pane slices its sorted list to `capacity` first, so a table never walks hundreds of
processes), and on `sync` compares each shown cell with what was on screen at that position:
only the differing cells are marked dirty.

Each column is its own small widget. Textual writes a partial update from the left edge of
the widget (strictly: of the compositor "chop") up to the end of the dirty span, so with one
widget per table a changed number at the right end would rewrite the whole row; with one
widget per column the terminal receives just the changed cell. Column widths are fixed (no
layout refresh on data); the lowest-priority columns are hidden when the pane is too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Union

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

# A cell is its text, or (text, tone) where tone is one of TONES (a component class suffix).
Cell = Union[str, tuple[str, str]]
TONES = ("ok", "warn", "error", "muted", "spark", "strong")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    align: str = "right"  # "left" | "right"
    flex: bool = False  # takes the spare width (one per table)
    priority: int = 5  # dropped lowest first when the table is narrow; 9 = never


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


def _tone(cell: Cell) -> str:
    return "" if isinstance(cell, str) else cell[1]


def fit(text: str, width: int, align: str) -> str:
    if len(text) > width:
        text = text[: max(width - 1, 0)] + "…" if width > 0 else ""
    return text.rjust(width) if align == "right" else text.ljust(width)


class ColumnView(Widget):
    """One column of a KeyedTable: its header and the shown rows' cells."""

    DEFAULT_CSS = """
    ColumnView { height: 1fr; }
    """

    def __init__(self, table: "KeyedTable", index: int) -> None:
        super().__init__()
        self.table = table
        self.index = index
        self.column = table.columns[index]
        self.cell_width = self.column.width

    def render_line(self, y: int) -> Strip:
        t = self.table
        width = self.size.width
        col = self.column
        base = t.rich_style
        inner = max(width - 1, 0)
        if y == 0:
            style = base + t.get_component_rich_style("ktable--header", partial=True)
            label = col.label
            if col.key == t.sort_key:
                label += "▼" if t.sort_reverse else "▲"
            return Strip([Segment(fit(label, inner, col.align) + " ", style)], width)
        pos = y - 1
        if pos >= len(t._order):
            return Strip.blank(width, base)
        cell = t._cells[t._order[pos]][self.index]
        tone = _tone(cell)
        style = base
        if tone:
            style = base + t.get_component_rich_style(f"ktable--{tone}", partial=True)
        if pos == t.cursor:
            cursor = t.get_component_rich_style(
                "ktable--cursor" if t.has_focus else "ktable--cursor-blur", partial=True)
            if tone:
                style = style + Style(bgcolor=cursor.bgcolor, reverse=cursor.reverse,
                                      underline=cursor.underline, bold=cursor.bold)
            else:
                style = base + cursor
        # The gap is on the right so a dirty span (width - 1) ends on the cell's last glyph:
        # Textual then writes nothing for the neighbouring column.
        return Strip([Segment(fit(_text(cell), inner, col.align) + " ", style)], width)


class KeyedTable(Widget, can_focus=True):
    """Rows keyed by a hashable; `sync(rows)` repaints only changed cells."""

    COMPONENT_CLASSES = {
        "ktable--header",
        "ktable--cursor",
        "ktable--cursor-blur",
        *(f"ktable--{t}" for t in TONES),
    }

    DEFAULT_CSS = """
    KeyedTable {
        height: 1fr;
        width: 1fr;
        layout: horizontal;
        padding-left: 1;
    }
    KeyedTable > .ktable--header { text-style: bold; color: $text-muted; }
    KeyedTable > .ktable--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    KeyedTable > .ktable--cursor-blur {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    KeyedTable > .ktable--ok { color: $success; }
    KeyedTable > .ktable--warn { color: $warning; }
    KeyedTable > .ktable--error { color: $error; text-style: bold; }
    KeyedTable > .ktable--muted { color: $text-muted; }
    KeyedTable > .ktable--spark { color: $primary; }
    KeyedTable > .ktable--strong { text-style: bold; }
    """

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "up", show=False),
        Binding("down,j", "cursor(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "edge(-1)", "top", show=False),
        Binding("end", "edge(1)", "bottom", show=False),
    ]

    class Scroll(Message):
        """The cursor ran off the shown rows: the pane should shift its window by `delta`."""

        def __init__(self, table: "KeyedTable", delta: int) -> None:
            super().__init__()
            self.table = table
            self.delta = delta

    class Resized(Message):
        """The table's size changed: its owner should refill it (capacity may differ)."""

        def __init__(self, table: "KeyedTable") -> None:
            super().__init__()
            self.table = table

    class CursorMoved(Message):
        def __init__(self, table: "KeyedTable", index: int) -> None:
            super().__init__()
            self.table = table
            self.index = index

    def __init__(self, columns: list[Column], *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = list(columns)
        self._order: list[Hashable] = []
        self._cells: dict[Hashable, tuple[Cell, ...]] = {}
        self.cursor = 0
        self.sort_key: str | None = None
        self.sort_reverse = True
        self.hidden_columns: frozenset[str] = frozenset()
        self._views: list[ColumnView] = []
        self._shown: list[ColumnView] = []
        self._layout_width = -1
        self.repaints = 0  # cells marked dirty by sync; the cost tests read it

    def compose(self):
        self._views = [ColumnView(self, i) for i in range(len(self.columns))]
        yield from self._views

    # ---- geometry -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many data rows fit (one line is the header)."""
        return max(self.size.height - 1, 0)

    def _fit_columns(self) -> None:
        """Choose the columns that fit the width; the flex column takes the spare cells."""
        width = self.size.width + 1  # size excludes the padding
        if width == self._layout_width or not self._views:
            return
        self._layout_width = width
        keep = [i for i, c in enumerate(self.columns) if c.key not in self.hidden_columns]

        def total(idx: list[int]) -> int:
            return sum(self.columns[i].width + 1 for i in idx) + 1  # + padding-left

        while total(keep) > width and len(keep) > 1:
            victim = min((i for i in keep if self.columns[i].priority < 9),
                         key=lambda i: (self.columns[i].priority, -i), default=None)
            if victim is None:
                break
            keep.remove(victim)
        spare = max(width - total(keep), 0)
        shown = []
        for i, view in enumerate(self._views):
            visible = i in keep
            if visible:
                col = self.columns[i]
                w = col.width + 1 + (spare if col.flex else 0)
                view.cell_width = w
                if view.styles.width is None or view.styles.width.value != w:
                    view.styles.width = w
                shown.append(view)
            if view.display != visible:
                view.display = visible
        self._shown = shown

    def set_hidden(self, keys: frozenset[str]) -> None:
        """Hide columns (e.g. watts while no power source exists); a rare, full repaint."""
        if keys != self.hidden_columns:
            self.hidden_columns = frozenset(keys)
            self._layout_width = -1
            self._fit_columns()

    def visible_columns(self) -> list[str]:
        return [v.column.key for v in self._shown]

    def on_resize(self, event: events.Resize) -> None:
        self._layout_width = -1
        self._fit_columns()
        self.post_message(self.Resized(self))

    def on_mount(self) -> None:
        self._fit_columns()

    # ---- data -----------------------------------------------------------------------------

    @property
    def keys(self) -> list[Hashable]:
        return list(self._order)

    def row(self, key: Hashable) -> tuple[Cell, ...] | None:
        return self._cells.get(key)

    @property
    def cursor_key(self) -> Hashable | None:
        return self._order[self.cursor] if 0 <= self.cursor < len(self._order) else None

    def sync(self, rows: list[tuple[Hashable, tuple[Cell, ...]]]) -> int:
        """Show `rows` (already sorted and cut to capacity); repaint only what changed.

        Rows are compared by position with what is on screen: a row that moved repaints only
        the cells whose text differs from the row it replaced. Returns cells marked dirty.
        """
        self._fit_columns()
        old_order, old_cells = self._order, self._cells
        views = self._shown
        dirty = 0
        for pos, (key, cells) in enumerate(rows):
            y = pos + 1
            before = old_cells.get(old_order[pos]) if pos < len(old_order) else None
            for view in views:
                i = view.index
                if before is None or cells[i] != before[i]:
                    view.refresh(Region(0, y, view.cell_width - 1, 1))
                    dirty += 1
        for pos in range(len(rows), len(old_order)):
            for view in views:
                view.refresh(Region(0, pos + 1, view.cell_width - 1, 1))
                dirty += 1
        self._order = [key for key, _ in rows]
        self._cells = dict(rows)
        if self.cursor >= len(self._order) and self._order:
            self._set_cursor(len(self._order) - 1)
        self.repaints += dirty
        return dirty

    def clear_rows(self) -> None:
        self.sync([])

    def set_sort(self, key: str | None, reverse: bool) -> None:
        self.sort_key, self.sort_reverse = key, reverse
        for view in self._views:
            view.refresh(Region(0, 0, view.cell_width, 1))

    # ---- cursor ---------------------------------------------------------------------------

    def _refresh_row(self, pos: int) -> None:
        for view in self._shown:
            view.refresh(Region(0, pos + 1, view.cell_width, 1))

    def _set_cursor(self, index: int) -> None:
        index = max(0, min(index, max(len(self._order) - 1, 0)))
        if index == self.cursor:
            return
        old, self.cursor = self.cursor, index
        self._refresh_row(old)
        self._refresh_row(index)
        self.post_message(self.CursorMoved(self, index))

    def action_cursor(self, delta: int) -> None:
        target = self.cursor + delta
        if target < 0 or target >= len(self._order):
            self.post_message(self.Scroll(self, delta))
        else:
            self._set_cursor(target)

    def action_page(self, direction: int) -> None:
        self.post_message(self.Scroll(self, direction * max(self.capacity - 1, 1)))

    def action_edge(self, direction: int) -> None:
        self.post_message(self.Scroll(self, direction * 1_000_000))
        self._set_cursor(0 if direction < 0 else len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._set_cursor(event.y - 1)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.post_message(self.Scroll(self, 3))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.post_message(self.Scroll(self, -3))

    def on_focus(self) -> None:
        self._refresh_row(self.cursor)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor)
