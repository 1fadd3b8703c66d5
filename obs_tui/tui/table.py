"""KeyedTable: a small table that repaints only the cells whose shown text changed.

Textual's DataTable repaints the whole widget on every `update_cell` (and re-renders every
visible row), which made a diffing four-table app costly every tick (BENCHMARKS.md). This
widget keeps rows keyed (by pid, service, SLO name), holds only the rows that fit on screen
(the pane slices its sorted list to `capacity` first, so a table never walks hundreds of
processes), and on `sync` compares each shown cell with what was on screen at that position:
only the rows with a differing cell are repainted, and only as far as their last changed cell.

The columns are drawn as two widgets: the identity columns (PID, name: `Column.ident`) and the
values. Textual writes a partial update from the left edge of a widget (strictly: of the
compositor "chop") to the end of the dirty span, so the names are not rewritten when a value
changes; and the values of a row go out as one run (one cursor move, one style per tone)
rather than one write per cell. Fewer widgets is also what keeps the compositor cheap: every
screen update renders each widget under its bounding box. Column widths are fixed (no layout
refresh on data); the lowest-priority columns are hidden when the pane is too narrow.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from rich.color import ColorType
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from obs_tui.text import printable

# A cell is its text, or (text, tone) where tone is one of TONES (a component class suffix).
Cell = str | tuple[str, str]
TONES = ("ok", "warn", "error", "muted", "spark", "strong")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    align: str = "right"  # "left" | "right"
    flex: bool = False  # takes the spare width (one per table)
    priority: int = 5  # dropped lowest first when the table is narrow; 9 = never
    ident: bool = False  # names the row (PID, name): its text changes only when rows move


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


def _tone(cell: Cell) -> str:
    return "" if isinstance(cell, str) else cell[1]


def fit(text: str, width: int, align: str) -> str:
    """A cell's text as drawn: printable (see obs_tui/text.py), cut or padded to `width`."""
    text = printable(text)
    if len(text) > width:
        text = text[: max(width - 1, 0)] + "…" if width > 0 else ""
    return text.rjust(width) if align == "right" else text.ljust(width)


def _is_default(color) -> bool:
    return color is None or color.type == ColorType.DEFAULT


def plain_if_default(style: Style) -> Style:
    """The null style when `style` only names the terminal's own colours (the ANSI themes).

    Every segment Textual writes ends in a reset, so unstyled text is drawn in the terminal's
    default colours anyway; saying so again costs 12 bytes a cell on the wire."""
    colours_only = Style(color=style.color, bgcolor=style.bgcolor)
    if style == colours_only and _is_default(style.color) and _is_default(style.bgcolor):
        return Style()
    return style


class ColumnGroup(Widget):
    """Adjacent columns of a KeyedTable drawn as one widget: their header and the shown rows."""

    DEFAULT_CSS = """
    ColumnGroup { height: 1fr; }
    """

    def __init__(self, table: KeyedTable, indexes: list[int]) -> None:
        super().__init__()
        self.table = table
        self.indexes = indexes
        # (column index, cell width incl. its one-cell gap) of the columns shown; set on layout
        self.shown: list[tuple[int, int]] = []

    def dirty_end(self, cells: tuple[Cell, ...], before: tuple[Cell, ...] | None) -> tuple[int, int]:
        """(where the last cell that differs from `before` ends, how many differ); 0 when none.

        The span stops on that cell's last glyph, before its gap, so Textual writes nothing
        of the widget to the right."""
        end = x = changed = 0
        for i, width in self.shown:
            if before is None or cells[i] != before[i]:
                end = x + width - 1
                changed += 1
            x += width
        return end, changed

    def render_line(self, y: int) -> Strip:
        t = self.table
        width = self.size.width
        columns = t.columns
        if y == 0:
            text = ""
            for i, w in self.shown:
                col = columns[i]
                label = col.label
                if col.key == t.sort_key:
                    label += "▼" if t.sort_reverse else "▲"
                text += fit(label, w - 1, col.align) + " "
            return Strip([Segment(text, t.cell_style("header", False))], width)
        pos = y - 1
        if pos >= len(t._order):
            return Strip.blank(width, t.cell_style("", False))
        cells = t._cells[t._order[pos]]
        on_cursor = pos == t.cursor
        # Neighbouring cells of the same style go out as one segment (one SGR on the wire).
        segments: list[Segment] = []
        run, run_style = "", None
        for i, w in self.shown:
            cell = cells[i]
            style = t.cell_style(_tone(cell), on_cursor)
            text = fit(_text(cell), w - 1, columns[i].align) + " "
            if style is run_style:
                run += text
            else:
                if run:
                    segments.append(Segment(run, run_style))
                run, run_style = text, style
        if run:
            segments.append(Segment(run, run_style))
        return Strip(segments, width)


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

        def __init__(self, table: KeyedTable, delta: int) -> None:
            super().__init__()
            self.table = table
            self.delta = delta

    class Resized(Message):
        """The table's size changed: its owner should refill it (capacity may differ)."""

        def __init__(self, table: KeyedTable) -> None:
            super().__init__()
            self.table = table

    class CursorMoved(Message):
        def __init__(self, table: KeyedTable, index: int) -> None:
            super().__init__()
            self.table = table
            self.index = index

    def __init__(self, columns: list[Column], *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = list(columns)
        self._order: list[Hashable] = []
        self._cells: dict[Hashable, tuple[Cell, ...]] = {}
        self.cursor = 0
        self.sort_key: str | None = None
        self.sort_reverse = True
        self.hidden_columns: frozenset[str] = frozenset()
        self.first_kept: frozenset[str] = frozenset()  # kept before any column under 9
        self._groups: list[ColumnGroup] = []
        self._shown: list[ColumnGroup] = []
        self._styles: dict[tuple[str, bool, bool], Style] = {}  # (tone, on cursor, focused)
        self._layout_width = -1
        self.repaints = 0  # cells found changed by sync; the cost tests read it

    def compose(self):
        runs: list[list[int]] = []
        for i, col in enumerate(self.columns):
            if runs and self.columns[runs[-1][0]].ident == col.ident:
                runs[-1].append(i)
            else:
                runs.append([i])
        self._groups = [ColumnGroup(self, run) for run in runs]
        yield from self._groups

    # ---- styles ---------------------------------------------------------------------------

    def cell_style(self, tone: str, on_cursor: bool) -> Style:
        """The style of a cell ("header", a tone or ""), on the cursor row or not; cached
        until the theme or the focus changes, so equal styles are the same object."""
        key = (tone, on_cursor, on_cursor and self.has_focus)
        style = self._styles.get(key)
        if style is None:
            style = self._make_style(tone, on_cursor)
            self._styles[key] = style
        return style

    def _make_style(self, tone: str, on_cursor: bool) -> Style:
        base = self.rich_style
        style = base
        if tone:
            style = base + self.get_component_rich_style(f"ktable--{tone}", partial=True)
        if on_cursor:
            cursor = self.get_component_rich_style(
                "ktable--cursor" if self.has_focus else "ktable--cursor-blur", partial=True
            )
            if tone:
                style = style + Style(
                    bgcolor=cursor.bgcolor,
                    reverse=cursor.reverse,
                    underline=cursor.underline,
                    bold=cursor.bold,
                )
            else:
                style = base + cursor
        return plain_if_default(style)

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    # ---- geometry -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many data rows fit (one line is the header)."""
        return max(self.size.height - 1, 0)

    def _fit_columns(self) -> None:
        """Choose the columns that fit the width; the flex column takes the spare cells."""
        width = self.size.width + 1  # size excludes the padding
        if width == self._layout_width or not self._groups:
            return
        self._layout_width = width
        keep = [i for i, c in enumerate(self.columns) if c.key not in self.hidden_columns]

        def total(idx: list[int]) -> int:
            return sum(self.columns[i].width + 1 for i in idx) + 1  # + padding-left

        while total(keep) > width and len(keep) > 1:
            victim = min(
                (i for i in keep if self.columns[i].priority < 9),
                key=lambda i: (self.columns[i].key in self.first_kept, self.columns[i].priority, -i),
                default=None,
            )
            if victim is None:
                break
            keep.remove(victim)
        spare = max(width - total(keep), 0)
        shown = []
        for group in self._groups:
            group.shown = [
                (i, self.columns[i].width + 1 + (spare if self.columns[i].flex else 0))
                for i in group.indexes
                if i in keep
            ]
            w = sum(cell for _, cell in group.shown)
            if w:
                if group.styles.width is None or group.styles.width.value != w:
                    group.styles.width = w
                shown.append(group)
            if group.display != bool(w):
                group.display = bool(w)
            group.refresh()
        self._shown = shown

    def set_hidden(self, keys: frozenset[str]) -> None:
        """Hide columns (e.g. watts while no power source exists); a rare, full repaint."""
        if keys != self.hidden_columns:
            self.hidden_columns = frozenset(keys)
            self._layout_width = -1
            self._fit_columns()

    def keep_first(self, keys: frozenset[str]) -> None:
        """Columns kept before any other that may give way (compare's change columns)."""
        if keys != self.first_kept:
            self.first_kept = frozenset(keys)
            self._layout_width = -1
            self._fit_columns()

    def visible_columns(self) -> list[str]:
        return [self.columns[i].key for g in self._shown for i, _ in g.shown]

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
        the cells whose text differs from the row it replaced. Returns the cells that differed.
        """
        self._fit_columns()
        old_order, old_cells = self._order, self._cells
        groups = self._shown
        dirty = 0
        for pos, (_key, cells) in enumerate(rows):
            before = old_cells.get(old_order[pos]) if pos < len(old_order) else None
            if before == cells:
                continue
            for group in groups:
                end, changed = group.dirty_end(cells, before)
                if changed:
                    group.refresh(Region(0, pos + 1, end, 1))
                    dirty += changed
        for pos in range(len(rows), len(old_order)):
            for group in groups:
                group.refresh(Region(0, pos + 1, group.size.width, 1))
            dirty += sum(len(g.shown) for g in groups)
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
        for group in self._groups:
            group.refresh(Region(0, 0, group.size.width, 1))

    # ---- cursor ---------------------------------------------------------------------------

    def _refresh_row(self, pos: int) -> None:
        for group in self._shown:
            group.refresh(Region(0, pos + 1, group.size.width, 1))

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

    class HeaderClicked(Message):
        """A column's header was clicked: its owner sorts by it (again: the other way)."""

        def __init__(self, table: KeyedTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

    def column_at(self, screen_x: int) -> str | None:
        """The key of the column drawn at this screen column, if any."""
        for group in self._shown:
            x = screen_x - group.region.x
            if 0 <= x < group.region.width:
                for i, width in group.shown:
                    if x < width:
                        return self.columns[i].key
                    x -= width
        return None

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._set_cursor(event.y - 1)
        elif event.y == 0:
            column = self.column_at(event.screen_x)
            if column is not None:
                self.post_message(self.HeaderClicked(self, column))

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
