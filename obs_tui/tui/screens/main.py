"""The main screen: the header, the four panes, and the key line (or the filter input, or
replay's prompt for a time).

It owns what only makes sense while it is shown: its keys (Textual applies a screen's bindings
only while it is the active screen), the layout (grid, stacked when narrow, one pane zoomed),
the focused pane and its filter, and replay's keys (tui/replay.py). The App hands it frames.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Input

from obs_tui.model import Frame
from obs_tui.tui import replay
from obs_tui.tui.fmt import escape
from obs_tui.tui.header import Header
from obs_tui.tui.history import History
from obs_tui.tui.panes import PANES, Pane
from obs_tui.tui.screens.detail import DetailScreen
from obs_tui.tui.widgets import TextLine

# Below these the four panes stack (the focused one large, the others one summary line each).
NARROW_WIDTH, NARROW_HEIGHT = 120, 30

KEYS_WIDE = (
    "[b]q[/] quit  [b]?[/] help  [b]/[/] filter  [b]< >[/] sort  [b]space[/] pause  "
    "[b]enter[/] detail  [b]tab[/] pane  [b]1-4[/] zoom  [b]T[/] theme"
)
KEYS_NARROW = (
    "[b]q[/] quit [b]?[/] help [b]/[/] filter [b]<>[/] sort [b]spc[/] pause "
    "[b]⏎[/] detail [b]tab[/] pane [b]1-4[/] zoom [b]T[/] theme"
)
# While replaying: how to move in time and how to get back to live come first.
KEYS_REPLAY_WIDE = (
    "[b]L[/] live  [b]\\[ ][/] tick  [b]{ }[/] minute  [b]g[/] go to  [b]c C[/] compare  "
    "[b]?[/] help  [b]enter[/] detail  [b]tab[/] pane  [b]q[/] quit"
)
KEYS_REPLAY_NARROW = (
    "[b]L[/] live [b]\\[ ][/] tick [b]{ }[/] min [b]g[/] go to [b]c C[/] compare [b]?[/] help [b]q[/] quit"
)


class MainScreen(replay.ReplayMixin, Screen[None]):
    """The header, the four panes, and the key line (or the filter input)."""

    DEFAULT_CSS = """
    MainScreen { layout: vertical; }
    MainScreen > #timebar { display: none; background: $panel; padding: 0 1; }
    MainScreen > #timebar.-show { display: block; }
    MainScreen > #body { height: 1fr; layout: grid; grid-size: 2 2; }
    MainScreen > #body.-zoomed { grid-size: 1 1; }
    MainScreen > #body.narrow { layout: vertical; }
    MainScreen > #body.narrow > Pane {
        height: auto; border: none; border-top: solid $border-blurred;
    }
    MainScreen > #body.narrow > Pane:focus-within { border: none; border-top: solid $border; }
    MainScreen > #body.narrow > Pane.-focused { height: 1fr; }
    MainScreen > #body > Pane.-hidden { display: none; }
    MainScreen > #keys { color: $text-muted; padding: 0 1; }
    MainScreen > #filter, MainScreen > #when {
        display: none; height: 1; border: none; padding: 0 1; background: $panel;
    }
    """

    BINDINGS = [
        Binding("slash", "filter", "filter", id="filter"),
        Binding("less_than_sign", "sort(-1)", "sort previous", id="sort-prev"),
        Binding("greater_than_sign,f6", "sort(1)", "sort next", id="sort-next"),
        Binding("I", "reverse_sort", "reverse sort", id="sort-reverse"),  # htop's invert
        Binding("enter", "detail", "detail", id="detail"),
        Binding("tab", "next_pane(1)", "next pane", id="next-pane", priority=True),
        Binding("shift+tab", "next_pane(-1)", "previous pane", id="prev-pane", priority=True),
        Binding("1", "zoom(0)", "maximise 1", id="zoom-1"),
        Binding("2", "zoom(1)", "maximise 2", id="zoom-2"),
        Binding("3", "zoom(2)", "maximise 3", id="zoom-3"),
        Binding("4", "zoom(3)", "maximise 4", id="zoom-4"),
        Binding("i", "instance(1)", "next host", id="instance-next"),
        Binding("u", "instance(-1)", "previous host", id="instance-prev"),
        Binding("escape", "escape", "back", id="escape", show=False),
        *replay.BINDINGS,
    ]

    def __init__(self, read_only: bool = False) -> None:
        super().__init__()
        self.zoomed: int | None = None
        self.focused_pane = 0
        self.header = Header(read_only=read_only, id="header")
        self.timebar = TextLine("", id="timebar")  # replay: where history has data, and the frame shown
        self.keys = TextLine(KEYS_WIDE, id="keys")
        self.filter_box = Input(
            placeholder="filter: type to narrow the focused pane, Enter keeps, Esc clears", id="filter"
        )
        self.time_box = Input(id="when")  # replay's g and C: the time asked for
        # The four panes live as long as the screen: kept here, not found by a DOM query a frame.
        self.panes: list[Pane] = [
            cls(id=f"pane-{cls.__name__.removesuffix('Pane').lower()}") for cls in PANES
        ]
        self.body = Container(*self.panes, id="body")
        self._ready = False

    @property
    def pane(self) -> Pane:
        return self.panes[self.focused_pane]

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.timebar
        yield self.body
        yield self.keys
        yield self.filter_box
        yield self.time_box

    def on_mount(self) -> None:
        self._ready = True
        app = self.console
        if app.remembered is not None:
            app.remembered.restore_sorts(self.panes)
        self.apply_layout()
        self.pane.focus()
        app.main_ready()

    def on_screen_resume(self) -> None:
        self.apply_layout()  # the terminal may have been resized while another screen was up
        self.app.call_after_refresh(self._repaint_unless_seeking, self.seeks_shown)

    def _repaint_unless_seeking(self, seeks_shown: int) -> None:
        """After another screen (live frames came meanwhile), unless a seek is under way or
        painted since, whose frame replaces this one or already has."""
        if not self.seeking and self.seeks_shown == seeks_shown:
            self.console.render_frame()

    def on_resize(self, event: events.Resize) -> None:
        self.apply_layout(event.size.width, event.size.height)

    # ---- frames -----------------------------------------------------------------------------

    def show_frame(self, frame: Frame, history: History) -> None:
        """Repaint the header and every pane not hidden behind a maximised one."""
        self.render_header()
        changes = self.changes(frame)
        for pane in self.panes:
            pane.compare_with(changes)
            if not pane.has_class("-hidden"):
                pane.show(frame, history)

    def render_keys(self) -> None:
        narrow = self.body.has_class("narrow")
        if self.console.replaying:
            self.keys.set(KEYS_REPLAY_NARROW if narrow else KEYS_REPLAY_WIDE)
        else:
            self.keys.set(KEYS_NARROW if narrow else KEYS_WIDE)

    def render_header(self) -> None:
        if not self._ready:
            return
        self.render_keys()
        app = self.console
        self.header.show(
            app.frame,
            paused=app.paused,
            error=app.error,
            recorded=self.replay_badge(),
        )

    def show_start_failure(self, error: str) -> None:
        for pane in self.panes:
            pane.summary_line.set(f"[$error]engine failed to start:[/] {escape(error)}")

    # ---- layout -----------------------------------------------------------------------------

    def apply_layout(self, width: int | None = None, height: int | None = None) -> None:
        if not self._ready:
            return
        app = self.console
        width = app.size.width if width is None else width
        height = app.size.height if height is None else height
        narrow = width < NARROW_WIDTH or height < NARROW_HEIGHT
        self.body.set_class(narrow, "narrow")
        self.body.set_class(self.zoomed is not None, "-zoomed")
        self.render_keys()
        for i, pane in enumerate(self.panes):
            hidden = self.zoomed is not None and i != self.zoomed
            was_hidden = pane.has_class("-hidden")
            pane.set_class(hidden, "-hidden")
            pane.set_class(i == self.focused_pane, "-focused")
            pane.set_compact(narrow and not hidden and i != self.focused_pane)
            if was_hidden and not hidden and app.frame is not None:
                self.call_after_refresh(pane.show, app.frame, app.history)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        widget: Any = event.widget
        while widget is not None and not isinstance(widget, Pane):
            widget = widget.parent
        if widget is not None:
            index = self.panes.index(widget)
            if index != self.focused_pane:
                self.focused_pane = index
                if self.zoomed is not None:
                    self.zoomed = index
                self.apply_layout()

    def focus_shown_pane(self) -> None:
        """Focus back on the focused pane (after the filter or replay's prompt)."""
        self.pane.focus_inside()

    def open_prompt(self, box: Input) -> None:
        """A prompt (the filter, replay's time) in place of the key line, focused at once:
        box.focus() would wait for the messages queued before it, and keys typed right after
        the one that opened it would go to the panes. Shown and hidden by its display, not a
        class: a class reapplies the stylesheet to the box and its parts."""
        box.display = True
        self.keys.display = False
        self.set_focus(box)

    def close_prompt(self, box: Input) -> None:
        box.display = False
        self.keys.display = True
        if self.focused is box:
            self.focus_shown_pane()

    def focus_pane(self, index: int) -> None:
        self.focused_pane = index % len(PANES)
        if self.zoomed is not None:
            self.zoomed = self.focused_pane
        self.apply_layout()
        self.call_after_refresh(self.pane.focus)

    # ---- keys -------------------------------------------------------------------------------

    def action_next_pane(self, step: int) -> None:
        self.focus_pane(self.focused_pane + step)

    def action_zoom(self, index: int) -> None:
        self.zoomed = None if self.zoomed == index else index
        self.focus_pane(index)

    def action_sort(self, step: int) -> None:
        self.pane.cycle_sort(step)

    def action_reverse_sort(self) -> None:
        self.pane.reverse_sort()

    def action_instance(self, step: int) -> None:
        """Read-only mode: show the next host of the fleet (all hosts first). The sources keep
        every instance's data, so the next frame shows it with no extra request."""
        if not self.console.select_instance(step):
            self.app.bell()
            return
        self.render_header()  # the panes follow at the next frame

    def action_detail(self) -> None:
        pane = self.pane
        key = pane.selected_key()
        spec = pane.detail(key) if key is not None else None
        if spec is None:
            self.app.bell()
            return
        self.app.push_screen(DetailScreen(lambda: pane.detail(key), spec))

    def action_filter(self) -> None:
        box = self.filter_box
        box.value = self.pane.filter_text
        box.placeholder = f"filter {self.pane.TITLE}: type, Enter keeps, Esc clears"
        self.open_prompt(box)

    def _close_filter(self, clear: bool) -> None:
        if clear:
            self.pane.set_filter("")
        self.close_prompt(self.filter_box)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is self.filter_box and event.input.display:
            self.pane.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is self.filter_box:
            self._close_filter(clear=False)
        elif event.input is self.time_box:
            self.time_typed(event.value)

    def action_escape(self) -> None:
        if self.time_box.display:
            self.close_time_prompt()
        elif self.filter_box.display:
            self._close_filter(clear=True)
        elif self.pane.filter_text:
            self.pane.set_filter("")
        elif self.zoomed is not None:
            self.zoomed = None
            self.apply_layout()
