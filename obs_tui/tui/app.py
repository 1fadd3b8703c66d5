"""ObsApp: the four-pane console (power, requests, SLO, carbon) over engine Frames.

Flow: the engine is built and ticked in a thread worker (bcc compiles the probes first, so the
layout shows at once with "starting…"); each Frame comes back as a FrameReady message; the
next poll is chained with set_timer after the previous one finished, so polls never overlap
and there is no other timer (choosing a fleet's host polls at once, after any poll under way). A frame repaints only what is shown: nothing while paused or
while another screen is up, only the summary line of a compact pane, nothing of a pane hidden
behind a maximised one, and inside a table only the cells whose text changed (KeyedTable).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer

from obs_tui.engine import EngineView, reason_of
from obs_tui.model import Frame
from obs_tui.tui.history import History
from obs_tui.tui.screens.detail import DetailScreen
from obs_tui.tui.screens.help import HelpScreen
from obs_tui.tui.screens.main import MainScreen
from obs_tui.tui.screens.too_small import TooSmallScreen, too_small
from obs_tui.tui.state import Remembered
from obs_tui.tui.terminal import ConsoleDriver, TerminalExit
from obs_tui.tui.themes import available_themes, colourless, drop_colour, initial_theme, load_theme

FIRST_RATE_DELAY = 0.5  # the first frame has no rates; fetch the second one sooner
# The first tick waits this long for the polled sources' first answers (Prometheus), so the
# first frame shows their data, not "waiting", and does not need a second tick to fill in.
FIRST_ANSWER_WAIT_S = 0.3


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


class ObsApp(App[int]):
    """The engine worker and its frames, the theme, the terminal, and the app-wide keys; the
    main screen (screens/main.py) does the rest."""

    TITLE = "obs-tui"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("q,f10", "quit", "quit", id="quit"),  # F10 as in htop and mc
        Binding("question_mark,f1", "help", "help", id="help"),
        Binding("space", "pause", "pause", id="pause"),
        Binding("T,t", "cycle_theme", "theme", id="theme"),
        # Ctrl-C quits, as in htop (Textual would only hint at ctrl+q): `obs-tui demo` then
        # stops everything it started.
        Binding("ctrl+c", "quit", "quit", id="quit-ctrl-c", show=False, priority=True),
    ]

    def __init__(
        self,
        engine_factory: Callable[[], EngineView],
        theme_name: str = "dark",
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(driver_class=ConsoleDriver if os.name == "posix" else None)
        # the wall clock replay's badge, time bar and typed times are read against (a test
        # gives a fixed one, so what is drawn does not depend on when it runs)
        self.clock = clock
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
        self.engine: EngineView | None = None
        self.frame: Frame | None = None  # the frame shown: the live one, or a replayed one
        self.history = self.live_history = History()
        self.live_frame: Frame | None = None
        self.replaying = False  # the frame shown is a recorded one (replay)
        self.paused = False
        self.frames = 0
        self.error = ""
        self.start_error = ""
        self._engine_lock = threading.Lock()
        self._closing = False
        self._timer: Timer | None = None
        self._main: MainScreen | None = None
        self.remembered: Remembered | None = None  # the theme and sorts kept between runs

    _themes: dict[str, Theme] = {}

    @property
    def current_theme(self) -> Theme:
        # Textual looks the current theme up for every line it draws (for its ANSI palette),
        # and each lookup copies the dict of all registered themes, built-in ones included,
        # twice: an eighth of the console's drawing time. Ours are registered once, at start.
        return self._themes.get(self.theme) or super().current_theme

    def get_default_screen(self) -> Screen[None]:
        self._main = MainScreen(read_only=self.read_only)
        return self._main

    @property
    def main(self) -> MainScreen:
        assert self._main is not None
        return self._main

    # ---- lifecycle and the poll -----------------------------------------------------------

    def main_ready(self) -> None:
        """The main screen is up: check the terminal's size and start polling the engine."""
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
                    self.engine.wait_ready(FIRST_ANSWER_WAIT_S)
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
        interval = self.engine.interval if self.engine is not None else 1.0
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
            self.main.render_header()
            self.main.update_timebar()
            return
        self.frame = message.frame
        if not self.paused and not self.main.seeking:  # a seek's frame replaces it at once
            self.render_frame()

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.error = message.error
        if message.fatal:
            self.start_error = message.error
            self.main.show_start_failure(message.error)
        else:
            self._schedule(message.started)
        self.main.render_header()

    def on_terminal_exit(self, message: TerminalExit) -> None:
        """SIGTERM, SIGINT, SIGHUP or the terminal gone: the normal exit (engine closed,
        terminal restored), with the shell's code for the signal."""
        self.exit(return_code=message.code)

    def on_unmount(self) -> None:
        self._closing = True
        gc.enable()  # (a seek in flight turned the collector off until its paint)
        if self._timer is not None:
            self._timer.stop()
        with self._engine_lock:
            if self.engine is not None:
                try:
                    self.engine.close()
                except Exception:
                    pass

    # ---- the frame shown ------------------------------------------------------------------

    def render_frame(self) -> None:
        """Repaint what is shown from the frame shown (nothing behind another screen)."""
        if self.frame is None or self.paused:
            return
        screen = self.screen
        if isinstance(screen, DetailScreen):
            screen.update_frame()
        elif isinstance(screen, MainScreen):
            screen.show_frame(self.frame, self.history)

    def show_recorded(self, frame: Frame, history: History | None = None) -> None:
        """Replay: show a recorded frame in place of live ones (and, once it is read, the
        history before it, for the sparklines)."""
        self.replaying = True
        self.frame = frame
        if history is not None:
            self.history = history
        self.render_frame()

    def show_live(self) -> None:
        self.replaying = False
        self.frame, self.history = self.live_frame, self.live_history
        self.render_frame()

    def select_instance(self, step: int) -> bool:
        """Read-only mode: the next host of the fleet; False when there is no fleet. The engine
        takes the choice under its lock and shows it from its next Frame, which is polled now:
        the header names the host of the numbers below it, never one chosen before they came."""
        engine, live = self.engine, self.live_frame
        if engine is None or live is None or not live.instances:
            return False
        engine.cycle_instance(step)
        if self._timer is not None:
            self._timer.stop()
        self._poll()
        return True

    # ---- the terminal ---------------------------------------------------------------------

    def check_size(self, width: int, height: int) -> None:
        small = too_small(width, height)
        showing = isinstance(self.screen, TooSmallScreen)
        if small and not showing:
            self.push_screen(TooSmallScreen())
        elif not small and showing:
            self.pop_screen()

    def on_resize(self, event: events.Resize) -> None:
        self.check_size(event.size.width, event.size.height)

    # ---- app-wide keys --------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.main.render_header()
        if not self.paused:
            self.render_frame()

    def action_cycle_theme(self) -> None:
        names = list(self._themes)  # the usual three first, then the user's
        current = self.theme if self.theme in names else names[0]
        self.theme = names[(names.index(current) + 1) % len(names)]


def run_console(
    engine_factory: Callable[[], EngineView],
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
        remembered.save_from(app.theme, app._main.panes if app._main is not None else [])
    return app.return_code or (1 if app.start_error else 0)
