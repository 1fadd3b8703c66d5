"""ObsApp: the four-pane console (power, requests, SLO, carbon) over engine Frames.

Flow: the engine is built and ticked in a thread worker (bcc compiles the probes first, so the
layout shows at once with "starting…"); each Frame comes back as a FrameReady message; the
next poll is chained with set_timer after the previous one finished, so polls never overlap
and there is no other timer. A frame repaints only what is shown: nothing while paused or
while another screen is up, only the summary line of a compact pane, nothing of a pane hidden
behind a maximised one, and inside a table only the cells whose text changed (KeyedTable).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Input

from obs_tui.engine import reason_of
from obs_tui.model import Frame
from obs_tui.tui import fmt, replay
from obs_tui.tui.fmt import escape
from obs_tui.tui.history import History
from obs_tui.tui.panes import PANES, Pane
from obs_tui.tui.screens.detail import DetailScreen
from obs_tui.tui.screens.help import HelpScreen
from obs_tui.tui.screens.too_small import TooSmallScreen, too_small
from obs_tui.tui.state import Remembered
from obs_tui.tui.terminal import ConsoleDriver, TerminalExit
from obs_tui.tui.themes import available_themes, colourless, drop_colour, initial_theme, load_theme
from obs_tui.tui.widgets import TextLine

# Below these the four panes stack (the focused one large, the others one summary line each).
NARROW_WIDTH, NARROW_HEIGHT = 120, 30
FIRST_RATE_DELAY = 0.5  # the first frame has no rates; fetch the second one sooner
# The first tick waits this long for the polled sources' first answers (Prometheus), so the
# first frame shows their data, not "waiting", and does not need a second tick to fill in.
FIRST_ANSWER_WAIT_S = 0.3


class EngineLike(Protocol):
    interval: float

    def tick(self) -> Frame: ...

    def close(self) -> None: ...


class FrameReady(Message):
    def __init__(self, frame: Frame, started: float) -> None:
        super().__init__()
        self.frame = frame
        self.started = started


class EngineFailed(Message):
    def __init__(self, error: str, fatal: bool, started: float) -> None:
        super().__init__()
        self.error = error
        self.fatal = fatal
        self.started = started


KEYS_WIDE = (
    "[b]q[/] quit  [b]?[/] help  [b]/[/] filter  [b]< >[/] sort  [b]space[/] pause  "
    "[b]enter[/] detail  [b]tab[/] pane  [b]1-4[/] zoom  [b]T[/] theme"
)
KEYS_NARROW = (
    "[b]q[/] quit [b]?[/] help [b]/[/] filter [b]<>[/] sort [b]spc[/] pause "
    "[b]⏎[/] detail [b]tab[/] pane [b]1-4[/] zoom [b]T[/] theme"
)


def badge(name: str, mode: str, reason: str, with_reason: bool, abbrev: bool = False) -> str:
    colour = {"live": "$success", "estimate": "$warning", "stale": "$error"}.get(mode, "$text-muted")
    shown = {"estimate": "est", "prometheus": "prom"} if abbrev else {}
    text = f"[{colour}]{escape(shown.get(name, name))} {escape(shown.get(mode, mode))}"
    if with_reason and reason and mode != "live":  # the short form; the pane has it all
        text += f": {escape(fmt.short_reason(reason, mode))}"
    return text + "[/]"


def badge_line(found: list[tuple[str, str, str]], reasons: set[int], sep: str, abbrev: bool) -> str:
    """The badges of `found`, those at the indices in `reasons` with their short reason;
    abbreviated, the live ones share one badge ("procs red live")."""
    shown = [
        badge(n, m, r, i in reasons, abbrev)
        for i, (n, m, r) in enumerate(found)
        if not (abbrev and m == "live")
    ]
    live = [n for n, m, _ in found if m == "live"]
    if abbrev and live:
        shown.insert(0, badge(" ".join(live), "live", "", False))
    return sep.join(shown)


def badges(frame: Frame) -> list[tuple[str, str, str]]:
    """(name, mode, reason) for every source in the frame, plus the panes' sources not built yet."""
    out = []
    for s in frame.sources:
        if s.join and not s.stale:  # a join's mode repeats its inputs' badges; its failure does not
            continue
        out.append((s.name, "stale" if s.stale else s.mode, s.reason))
    names = {s.name for s in frame.sources}
    wanted = [("red", "ebpf"), ("power", "rapl")]
    if "slo" not in names:
        wanted.append(("prometheus", "prometheus"))
    for name, cap_name in wanted:
        if name in names:
            continue
        cap = frame.capability(cap_name)
        reason = cap.reason if cap is not None and not cap.ok else "not built yet"
        out.append((name, "off", reason))
    return out


class MainScreen(Screen[None]):
    """The header, the four panes, and the key line (or the filter input)."""

    DEFAULT_CSS = """
    MainScreen { layout: vertical; }
    MainScreen > #header { background: $panel; color: $foreground; padding: 0 1; }
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
    MainScreen > #keys.-filtering { display: none; }
    MainScreen > #filter {
        display: none; height: 1; border: none; padding: 0 1; background: $panel;
    }
    MainScreen > #filter.-show { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield TextLine(" obs-tui  starting…", id="header")
        yield TextLine("", id="timebar")  # replay: where history has data, and the frame shown
        with Container(id="body"):
            for cls in PANES:
                yield cls(id=f"pane-{cls.__name__.removesuffix('Pane').lower()}")
        yield TextLine(KEYS_WIDE, id="keys")
        yield Input(
            placeholder="filter: type to narrow the focused pane, Enter keeps, Esc clears", id="filter"
        )

    def on_mount(self) -> None:
        app = self.app
        if isinstance(app, ObsApp):
            app.main_ready()

    def on_screen_resume(self) -> None:
        app = self.app
        if isinstance(app, ObsApp):
            app.call_after_refresh(app.render_frame)


class ObsApp(replay.ReplayMixin, App[int]):
    TITLE = "obs-tui"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("q,f10", "quit", "quit", id="quit"),  # F10 as in htop and mc
        Binding("question_mark,f1", "help", "help", id="help"),
        Binding("slash", "filter", "filter", id="filter"),
        Binding("less_than_sign", "sort(-1)", "sort previous", id="sort-prev"),
        Binding("greater_than_sign,f6", "sort(1)", "sort next", id="sort-next"),
        Binding("I", "reverse_sort", "reverse sort", id="sort-reverse"),  # htop's invert
        Binding("space", "pause", "pause", id="pause"),
        Binding("enter", "detail", "detail", id="detail"),
        Binding("tab", "next_pane(1)", "next pane", id="next-pane", priority=True),
        Binding("shift+tab", "next_pane(-1)", "previous pane", id="prev-pane", priority=True),
        Binding("1", "zoom(0)", "maximise 1", id="zoom-1"),
        Binding("2", "zoom(1)", "maximise 2", id="zoom-2"),
        Binding("3", "zoom(2)", "maximise 3", id="zoom-3"),
        Binding("4", "zoom(3)", "maximise 4", id="zoom-4"),
        Binding("T,t", "cycle_theme", "theme", id="theme"),
        Binding("i", "instance(1)", "next host", id="instance-next"),
        Binding("u", "instance(-1)", "previous host", id="instance-prev"),
        Binding("escape", "escape", "back", id="escape", show=False),
        *replay.BINDINGS,
        # Ctrl-C quits, as in htop (Textual would only hint at ctrl+q): `obs-tui demo` then
        # stops everything it started.
        Binding("ctrl+c", "quit", "quit", id="quit-ctrl-c", show=False, priority=True),
    ]

    def __init__(
        self, engine_factory: Callable[[], EngineLike], theme_name: str = "dark", read_only: bool = False
    ) -> None:
        super().__init__(driver_class=ConsoleDriver if os.name == "posix" else None)
        self._themes = {}
        for name in available_themes():
            try:
                self._themes[name] = load_theme(name)
            except ValueError:  # a broken user theme is not offered; --theme NAME says why
                continue
        for theme in self._themes.values():
            self.register_theme(theme)
        self.theme = initial_theme(theme_name)
        if self.no_color or colourless():
            self._filters = drop_colour(self._filters)  # Textual's list of line filters
        self.engine_factory = engine_factory
        self.read_only = read_only
        self.engine: EngineLike | None = None
        self.frame: Frame | None = None  # the frame shown: the live one, or a replayed one
        self.history = self.live_history = History()
        self.live_frame: Frame | None = None
        self.paused = False
        self.zoomed: int | None = None
        self.focused_pane = 0
        self.frames = 0
        self.error = ""
        self.start_error = ""
        self._engine_lock = threading.Lock()
        self._closing = False
        self._timer: Timer | None = None
        self._main: MainScreen | None = None
        self._main_up = False
        self._panes: list[Pane] = []
        self.remembered: Remembered | None = None  # the theme and sorts kept between runs

    _themes: dict[str, Theme] = {}

    @property
    def current_theme(self) -> Theme:
        # Textual looks the current theme up for every line it draws (for its ANSI palette),
        # and each lookup copies the dict of all registered themes, built-in ones included,
        # twice: an eighth of the console's drawing time. Ours are registered once, at start.
        return self._themes.get(self.theme) or super().current_theme

    def get_default_screen(self) -> Screen:
        self._main = MainScreen()
        self._panes = []
        return self._main

    # ---- widgets --------------------------------------------------------------------------

    @property
    def main(self) -> MainScreen:
        assert self._main is not None
        return self._main

    @property
    def panes(self) -> list[Pane]:
        # The four panes live as long as the main screen: kept here, not found by a DOM query a frame.
        if not self._panes:
            self._panes = list(self.main.query(Pane).results(Pane))
        return self._panes

    @property
    def pane(self) -> Pane:
        return self.panes[self.focused_pane]

    # ---- lifecycle and the poll -----------------------------------------------------------

    def main_ready(self) -> None:
        self._main_up = True
        if self.remembered is not None:
            self.remembered.restore_sorts(self.panes)
        self.apply_layout()
        self.pane.focus()
        self.check_size(self.size.width, self.size.height)
        self._poll()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self) -> None:
        started = time.monotonic()
        with self._engine_lock:
            if self._closing:
                return
            if self.engine is None:
                try:
                    self.engine = self.engine_factory()
                    wait_ready = getattr(self.engine, "wait_ready", None)
                    if wait_ready is not None:
                        wait_ready(FIRST_ANSWER_WAIT_S)
                except Exception as exc:  # the console stays up and says why
                    self.post_message(EngineFailed(reason_of(exc), True, started))
                    return
            try:
                frame = self.engine.tick()
            except Exception as exc:
                self.post_message(EngineFailed(reason_of(exc), False, started))
                return
        self.post_message(FrameReady(frame, started))

    def _schedule(self, started: float) -> None:
        if self._closing:
            return
        interval = float(getattr(self.engine, "interval", 1.0) or 1.0)
        if self.frames == 1 and self.frame is not None and self.frame.duration_s == 0:
            interval = min(interval, FIRST_RATE_DELAY)  # a first frame has no rates yet
        delay = max(interval - (time.monotonic() - started), 0.05)
        if self._timer is not None:  # one pending poll at most, whoever delivered the frame
            self._timer.stop()
        self._timer = self.set_timer(delay, self._poll, name="poll")

    def on_frame_ready(self, message: FrameReady) -> None:
        self.live_frame = message.frame
        self.frames += 1
        self.error = ""
        self.live_history.record(message.frame)
        self._schedule(message.started)
        if self.replaying:  # the recorded frame stays on screen; its age and the bar move on
            self.render_header()
            self.update_timebar()
            return
        self.frame = message.frame
        if not self.paused:
            self.render_frame()

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.error = message.error
        if message.fatal:
            self.start_error = message.error
            for pane in self.panes:
                pane.summary_line.set(f"[$error]engine failed to start:[/] {escape(message.error)}")
        else:
            self._schedule(message.started)
        self.render_header()

    def on_terminal_exit(self, message: TerminalExit) -> None:
        """SIGTERM, SIGINT, SIGHUP or the terminal gone: the normal exit (engine closed,
        terminal restored), with the shell's code for the signal."""
        self.exit(return_code=message.code)

    def on_unmount(self) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.stop()
        with self._engine_lock:
            if self.engine is not None:
                try:
                    self.engine.close()
                except Exception:
                    pass

    # ---- rendering ------------------------------------------------------------------------

    def render_frame(self) -> None:
        """Repaint what is shown from the latest frame (nothing behind another screen)."""
        if self.frame is None or self.paused:
            return
        screen = self.screen
        if isinstance(screen, DetailScreen):
            screen.update_frame()
            return
        if screen is not self._main:
            return
        self.render_header()
        for pane in self.panes:
            if not pane.has_class("-hidden"):
                pane.show(self.frame, self.history)

    def render_header(self) -> None:
        if not self._main_up:
            return
        header = self.main.query_one("#header", TextLine)
        width = max(header.size.width, self.size.width - 2)
        right = ""
        if self.paused:
            right = "[reverse b] PAUSED [/]"
        elif self.error:
            right = f"[$error]{escape(fmt.truncate(self.error, 40))}[/]"
        if self.read_only:
            right = "[b]read-only[/] " + right
        frame = self.frame
        if frame is None:
            left = "[b]obs-tui[/]  starting… (loading sources)"
            header.set(f"{left}  {right}" if right else left)
            return
        up = fmt.uptime(frame.uptime_s)
        full = f"[b]obs-tui[/]  [b]{escape(frame.host)}[/]  up {up}  every {frame.interval_s:g}s"
        short = f"[b]{escape(frame.host)}[/] up {up} {frame.interval_s:g}s"
        if frame.instances:  # read-only mode: the host is the fleet's, chosen with i
            engine = self.engine
            instance = getattr(engine, "instance", frame.instance)
            count = len(frame.instances)
            shown = escape(instance) if instance else f"all {count} host{'s' if count != 1 else ''}"
            full = f"[b]obs-tui[/]  [b]{shown}[/] [$text-muted](i: next host)[/]  every {frame.interval_s:g}s"
            short = f"[b]{shown}[/] {frame.interval_s:g}s"
        recorded = self.replay_badge()
        if recorded:
            full, short = f"{recorded} {full}", f"{recorded} {short}"
        tiny = short.rsplit(" up ", 1)[0] if not frame.instances else short
        found = badges(frame)
        failing = [i for i, (_, mode, reason) in enumerate(found) if mode in ("stale", "off") and reason]
        # Widest first; failing sources keep their short reasons as long as they fit, the first
        # one longest, even over the uptime (at 80 columns too); the panes and doctor have the
        # whole reason.
        layouts = [
            (full, "  ", set(range(len(found))), False),
            (full, "  ", set(failing), False),
            (short, " ", set(failing), False),
        ]
        layouts += [
            (base, " ", set(failing[:k]), True) for base in (short, tiny) for k in range(len(failing), 0, -1)
        ]
        layouts += [(short, " ", set(), False), (short, " ", set(), True), (tiny, " ", set(), True)]
        text = ""
        for base, sep, reasons, abbrev in layouts:
            text = base + "  " + badge_line(found, reasons, sep, abbrev)
            if len(_plain(text)) + len(_plain(right)) + 2 <= width:
                break
        pad = max(width - len(_plain(text)) - len(_plain(right)), 2)
        header.set(text + " " * pad + right if right else text)

    # ---- layout ---------------------------------------------------------------------------

    def apply_layout(self, width: int | None = None, height: int | None = None) -> None:
        if not self._main_up:
            return
        width = self.size.width if width is None else width
        height = self.size.height if height is None else height
        narrow = width < NARROW_WIDTH or height < NARROW_HEIGHT
        body = self.main.query_one("#body")
        body.set_class(narrow, "narrow")
        body.set_class(self.zoomed is not None, "-zoomed")
        self.main.query_one("#keys", TextLine).set(KEYS_NARROW if narrow else KEYS_WIDE)
        for i, pane in enumerate(self.panes):
            hidden = self.zoomed is not None and i != self.zoomed
            was_hidden = pane.has_class("-hidden")
            pane.set_class(hidden, "-hidden")
            pane.set_class(i == self.focused_pane, "-focused")
            pane.set_compact(narrow and not hidden and i != self.focused_pane)
            if was_hidden and not hidden and self.frame is not None:
                self.call_after_refresh(pane.show, self.frame, self.history)

    def check_size(self, width: int, height: int) -> None:
        small = too_small(width, height)
        showing = isinstance(self.screen, TooSmallScreen)
        if small and not showing:
            self.push_screen(TooSmallScreen())
        elif not small and showing:
            self.pop_screen()

    def on_resize(self, event: events.Resize) -> None:
        self.check_size(event.size.width, event.size.height)
        self.apply_layout(event.size.width, event.size.height)
        self.call_after_refresh(self.render_header)

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

    def focus_pane(self, index: int) -> None:
        self.focused_pane = index % len(PANES)
        if self.zoomed is not None:
            self.zoomed = self.focused_pane
        self.apply_layout()
        self.call_after_refresh(self.pane.focus)

    # ---- actions --------------------------------------------------------------------------

    def _on_main(self) -> bool:
        return self.screen is self._main

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.render_header()
        if not self.paused:
            self.render_frame()

    def action_next_pane(self, step: int) -> None:
        if self._on_main():
            self.focus_pane(self.focused_pane + step)

    def action_zoom(self, index: int) -> None:
        if not self._on_main():
            return
        self.zoomed = None if self.zoomed == index else index
        self.focus_pane(index)

    def action_sort(self, step: int) -> None:
        if self._on_main():
            self.pane.cycle_sort(step)

    def action_reverse_sort(self) -> None:
        if self._on_main():
            self.pane.reverse_sort()

    def action_instance(self, step: int) -> None:
        """Read-only mode: show the next host of the fleet (all hosts first). The sources keep
        every instance's data, so the next frame shows it with no extra request."""
        engine = self.engine
        if (
            not self._on_main()
            or engine is None
            or not hasattr(engine, "cycle_instance")
            or not engine.instances()
        ):
            self.bell()
            return
        engine.cycle_instance(step)
        self.render_header()  # the panes follow at the next frame

    def action_cycle_theme(self) -> None:
        names = list(self._themes)  # the usual three first, then the user's
        current = self.theme if self.theme in names else names[0]
        self.theme = names[(names.index(current) + 1) % len(names)]

    def action_detail(self) -> None:
        if not self._on_main():
            return
        pane = self.pane
        key = pane.selected_key()
        spec = pane.detail(key) if key is not None else None
        if spec is None:
            self.bell()
            return
        self.push_screen(DetailScreen(lambda: pane.detail(key), spec))

    def action_filter(self) -> None:
        if not self._on_main():
            return
        box = self.main.query_one("#filter", Input)
        box.value = self.pane.filter_text
        box.placeholder = f"filter {self.pane.TITLE}: type, Enter keeps, Esc clears"
        box.add_class("-show")
        self.main.query_one("#keys").add_class("-filtering")
        box.focus()

    def _close_filter(self, clear: bool) -> None:
        box = self.main.query_one("#filter", Input)
        if clear:
            self.pane.set_filter("")
        box.remove_class("-show")
        self.main.query_one("#keys").remove_class("-filtering")
        self.pane.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and event.input.has_class("-show"):
            self.pane.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self._close_filter(clear=False)

    def action_escape(self) -> None:
        if not self._on_main():
            return
        if self.main.query_one("#filter", Input).has_class("-show"):
            self._close_filter(clear=True)
        elif self.pane.filter_text:
            self.pane.set_filter("")
        elif self.zoomed is not None:
            self.zoomed = None
            self.apply_layout()


def _plain(markup: str) -> str:
    from textual.content import Content

    return Content.from_markup(markup).plain


def run_console(
    engine_factory: Callable[[], EngineLike],
    theme_name: str = "dark",
    read_only: bool = False,
    mouse: bool = True,
    remembered: Remembered | None = None,
) -> int:
    """Run the console until q; 0 on a normal exit, 1 when the engine could not start.
    mouse=False leaves the mouse to the terminal (text selection over SSH); `remembered`
    restores the panes' sorts and keeps what the user changed for the next run."""
    app = ObsApp(engine_factory, theme_name=theme_name, read_only=read_only)
    app.remembered = remembered
    if remembered is not None:
        remembered.start(app.theme)  # after NO_COLOR and aliases: only a T press changes it
    app.run(mouse=mouse)
    if remembered is not None:
        remembered.save_from(app.theme, app._panes)
    return app.return_code or (1 if app.start_error else 0)
