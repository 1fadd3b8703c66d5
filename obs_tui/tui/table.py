"""KeyedTable: a small table that repaints only the cells whose shown text changed.

Textual's DataTable repaints the whole widget on every `update_cell` (and re-renders every
visible row), which is what made a diffing four-table app cost 4.8 % CPU and 12 KB/s. This
widget keeps rows keyed (by pid, service, SLO name), holds only the rows that fit on screen
(the pane slices its sorted list to `capacity` first, so a table never walks hundreds of
processes), and on `sync` compares each shown cell with what was on screen at that position:
only the differing cells are marked dirty, so the terminal receives a few bytes per changed
number and nothing for the rest. Column widths are fixed (no layout refresh, ever); columns
with the lowest priority are dropped when the pane is too narrow to hold them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Union

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
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
    KeyedTable > .ktable--muted { color: $muted; }
    KeyedTable > .ktable--spark { color: $spark; }
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
        self._layout: list[tuple[int, int, int]] = []  # (column index, x, width)
        self._layout_width = -1
        self.hidden_columns: frozenset[str] = frozenset()
        self.repaints = 0  # cells marked dirty by sync; the cost tests read it

    # ---- geometry -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many data rows fit (one line is the header)."""
        return max(self.size.height - 1, 0)

    def _columns_layout(self) -> list[tuple[int, int, int]]:
        width = self.size.width
        if width == self._layout_width:
            return self._layout
        keep = [i for i, c in enumerate(self.columns) if c.key not in self.hidden_columns]

        def total(idx: list[int]) -> int:
            return 1 + sum(self.columns[i].width + 1 for i in idx)

        while total(keep) > width and len(keep) > 1:
            victim = min((i for i in keep if self.columns[i].priority < 9),
                         key=lambda i: (self.columns[i].priority, -i), default=None)
            if victim is None:
                break
            keep.remove(victim)
        spare = max(width - total(keep), 0)
        layout, x = [], 1
        for i in keep:
            w = self.columns[i].width + (spare if self.columns[i].flex else 0)
            layout.append((i, x, w))
            x += w + 1
        self._layout, self._layout_width = layout, width
        return layout

    def set_hidden(self, keys: frozenset[str]) -> None:
        """Hide columns (e.g. watts while no power source exists); a rare, full repaint."""
        if keys != self.hidden_columns:
            self.hidden_columns = frozenset(keys)
            self._layout_width = -1
            self.refresh()

    def visible_columns(self) -> list[str]:
        return [self.columns[i].key for i, _, _ in self._columns_layout()]

    def on_resize(self, event: events.Resize) -> None:
        self._layout_width = -1
        self.refresh()

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
        old_order, old_cells = self._order, self._cells
        layout = self._columns_layout()
        dirty: list[Region] = []
        width = self.size.width
        for pos, (key, cells) in enumerate(rows):
            y = pos + 1
            before = old_cells.get(old_order[pos]) if pos < len(old_order) else None
            if before is None:
                dirty.append(Region(0, y, width, 1))
                continue
            for ci, x, w in layout:
                if cells[ci] != before[ci]:
                    dirty.append(Region(x, y, w, 1))
        for pos in range(len(rows), len(old_order)):
            dirty.append(Region(0, pos + 1, width, 1))
        self._order = [key for key, _ in rows]
        self._cells = dict(rows)
        if self.cursor >= len(self._order) and self._order:
            self._set_cursor(len(self._order) - 1)
        if dirty:
            self.repaints += len(dirty)
            self.refresh(*dirty)
        return len(dirty)

    def clear_rows(self) -> None:
        self.sync([])

    def set_sort(self, key: str | None, reverse: bool) -> None:
        self.sort_key, self.sort_reverse = key, reverse
        self.refresh(Region(0, 0, self.size.width, 1))

    # ---- cursor ---------------------------------------------------------------------------

    def _set_cursor(self, index: int) -> None:
        index = max(0, min(index, max(len(self._order) - 1, 0)))
        if index == self.cursor:
            return
        old, self.cursor = self.cursor, index
        width = self.size.width
        self.refresh(Region(0, old + 1, width, 1), Region(0, index + 1, width, 1))
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

    def _refresh_cursor_row(self) -> None:
        self.refresh(Region(0, self.cursor + 1, self.size.width, 1))

    def on_focus(self) -> None:
        self._refresh_cursor_row()

    def on_blur(self) -> None:
        self._refresh_cursor_row()

    # ---- rendering ------------------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._order) + 1

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        layout = self._columns_layout()
        if y == 0:
            style = base + self.get_component_rich_style("ktable--header", partial=True)
            segments = [Segment(" ", style)]
            for ci, x, w in layout:
                col = self.columns[ci]
                label = col.label
                if col.key == self.sort_key:
                    label = label + ("▼" if self.sort_reverse else "▲")
                segments.append(Segment(fit(label, w, col.align), style))
                segments.append(Segment(" ", style))
            return Strip(segments).adjust_cell_length(width, style)
        pos = y - 1
        if pos >= len(self._order):
            return Strip.blank(width, base)
        cells = self._cells[self._order[pos]]
        row_style = base
        cursor = None
        if pos == self.cursor:
            cursor = self.get_component_rich_style(
                "ktable--cursor" if self.has_focus else "ktable--cursor-blur", partial=True)
            row_style = base + cursor
        segments = [Segment(" ", row_style)]
        for ci, x, w in layout:
            cell = cells[ci]
            tone = _tone(cell)
            style = row_style
            if tone:
                style = base + self.get_component_rich_style(f"ktable--{tone}", partial=True)
                if cursor is not None:
                    style = style + Style(bgcolor=cursor.bgcolor, reverse=cursor.reverse,
                                          underline=cursor.underline, bold=cursor.bold)
            segments.append(Segment(fit(_text(cell), w, self.columns[ci].align), style))
            segments.append(Segment(" ", row_style))
        return Strip(segments).adjust_cell_length(width, row_style)
