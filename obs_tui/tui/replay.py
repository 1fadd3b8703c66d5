"""Replay in the console: the keys that move through recorded history, and compare (the
panes' change columns against an earlier recorded frame).

The main screen's keys (a base of MainScreen); the frames are the App's. While replaying,
`app.frame` and `app.history` are the recorded frame and the history before it, so every pane
and detail screen draws them as they draw live ones; live frames keep coming (and being
recorded) into `app.live_frame` / `app.live_history`, shown again with L. Only the header and
the time bar under it say which one is on screen. Reading history (decoding chunks) runs in
thread workers, never on the UI thread.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, cast

from textual import work
from textual.actions import SkipAction
from textual.binding import Binding
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import get_current_worker

from obs_tui.analysis.compare import Change, compare
from obs_tui.history.store import Store
from obs_tui.history.timeline import Timeline, label_time
from obs_tui.history.timeparse import parse_time
from obs_tui.model import Frame
from obs_tui.tui.history import History
from obs_tui.tui.widgets import TextLine

if TYPE_CHECKING:
    from obs_tui.tui.app import ObsApp

COMPARE_BEFORE_S = 3600.0
HISTORY_DELAY_S = 0.3
SEEK_GC_BACKSTOP_S = 1.0
# Recorded frames read for the sparklines before a replayed one: twice what a row's sparkline
# draws (10 cells of 3 ticks), no more, since reading them competes with the next seek.
HISTORY_FRAMES = 60

BINDINGS = [
    Binding("left_square_bracket", "replay_step(-1)", "back one tick", id="replay-back"),
    Binding("right_square_bracket", "replay_step(1)", "forward one tick", id="replay-forward"),
    Binding("left_curly_bracket", "replay_seconds(-60)", "back one minute", id="replay-back-minute"),
    Binding("right_curly_bracket", "replay_seconds(60)", "forward one minute", id="replay-forward-minute"),
    # g and C open the prompt before the keys after them are routed (priority): typed in one
    # burst ("g14:05⏎" in one read over a slow link) the time goes into the prompt, not to
    # the panes' keys; in a text box they are letters (the actions skip themselves)
    Binding("g", "replay_goto", "go to a time", id="replay-goto", priority=True),
    Binding("L", "live", "back to live", id="live"),
    Binding("c", "compare", "changes since 1 h before (again: off)", id="compare"),
    Binding("C", "compare_at", "changes since a chosen time", id="compare-at", priority=True),
]


class ReplayFrame(Message):
    def __init__(
        self, seek: int, frame: Frame | None, why: str = "", after: Frame | None = None, ticks: int = 0
    ) -> None:
        super().__init__()
        self.seek = seek  # which seek found it (a later one, or L, makes it stale)
        self.frame = frame
        self.why = why
        self.after, self.ticks = after, ticks  # a step: `ticks` recorded ticks from `after`


class ReplayHistory(Message):
    def __init__(self, frame: Frame, history: History) -> None:
        super().__init__()
        self.frame = frame
        self.history = history


class CompareReady(Message):
    def __init__(self, then: Frame | None, now: Frame, asked: float) -> None:
        super().__init__()
        self.then = then
        self.now = now
        self.asked = asked


def ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min ago"
    return f"{seconds / 86400:.1f} days ago"


def replay_badge(frame: Frame, now: float) -> str:
    at = label_time(frame)
    when = time.strftime("%H:%M:%S", time.localtime(at))
    if abs(now - at) > 86400:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    return f"[reverse b] REPLAY {when} · {ago(now - at)} [/]"


class ReplayMixin(Screen[None]):
    """Replay and compare for the main screen (see the module docstring)."""

    timebar: TextLine
    time_box: Input  # the prompt for g's and C's time, in place of the key line
    _timeline: Timeline | None = None
    _time_answer: Callable[[str], None] | None = None
    compare_then: Frame | None = None  # compare on: the earlier frame the panes' changes are against
    # a seek is being read: the frame on screen is about to be replaced, so neither a live
    # frame nor the return from another screen repaints it meanwhile (each repaint would take
    # the UI thread, and the GIL, from the reading)
    seeking = False
    seeks_shown = 0  # how many seeks' frames were painted (a repaint they made obsolete is skipped)
    seeks_asked = 0  # the number of the latest seek: a thread worker cannot be stopped, so an
    # earlier seek's frame still arrives, and is dropped
    history_of: Frame | None = None  # the replayed frame whose history app.history holds
    history_on_hold = False  # its reading stopped while the `g` prompt is open

    @property
    def console(self) -> ObsApp:
        return cast("ObsApp", self.app)

    def render_header(self) -> None:
        raise NotImplementedError

    def open_prompt(self, box: Input) -> None:
        raise NotImplementedError

    def close_prompt(self, box: Input) -> None:
        raise NotImplementedError

    # ---- where the recorded frames come from ---------------------------------------------------

    def timeline(self) -> Timeline | None:
        if self._timeline is None:
            engine = self.console.engine
            store = engine.history if engine is not None else None
            if isinstance(store, Store):
                self._timeline = Timeline(store)
        return self._timeline

    def _no_history(self) -> None:
        engine = self.console.engine
        note = (engine.history_note if engine is not None else "") or (
            "no history store (started with --no-history?)"
        )
        self.app.bell()
        self.app.notify(note, title="no history", severity="warning")

    # ---- keys ---------------------------------------------------------------------------------

    def action_replay_step(self, ticks: int) -> None:
        app = self.console
        shown = app.frame
        if shown is None:
            return
        if not app.replaying and ticks > 0:
            app.bell()  # live is the newest there is
            return
        if app.replaying:
            self._seek(lambda timeline: timeline.step(shown, ticks), shown, ticks)
        else:  # from live: the newest recorded tick is one back
            self._seek(lambda timeline: timeline.step(timeline.frame_at(shown.taken_at) or shown, ticks + 1))

    def action_replay_seconds(self, seconds: float) -> None:
        app = self.console
        if app.frame is None:
            return
        if not app.replaying and seconds > 0:
            app.bell()
            return
        target = label_time(app.frame) + seconds
        self._seek(lambda timeline: timeline.frame_at(target))

    # ---- the prompt for a time --------------------------------------------------------------
    # A line in place of the key line, as the filter's, not a screen over the panes: closing
    # a screen repaints all of them (twice: Textual lays the screen out again once the closed
    # one's widgets are gone), and a seek's frame is about to repaint them anyway.

    def ask_time(self, prompt: str, answer: Callable[[str], None]) -> None:
        box = self.time_box
        self._time_answer = answer
        box.value = ""
        box.placeholder = prompt
        self.open_prompt(box)

    def time_typed(self, text: str) -> None:
        answer = self._time_answer
        if answer is not None and self.time_box.display:
            self._time_answer = None  # answered: what it shows is being sought
            answer(text.strip())

    def close_time_prompt(self) -> None:
        if self.time_box.display:
            self._time_answer = None
            self.close_prompt(self.time_box)
        if self.history_on_hold:  # closed without a seek: the frame shown still wants it
            self.history_on_hold = False
            frame = self.console.frame
            if frame is not None and self.history_of is not frame:
                self._read_history(frame)

    def _typed_time(self, text: str, title: str) -> float | None:
        """The time typed, or None (the prompt closed; a bad time said why)."""
        if not text:
            self.close_time_prompt()
            return None
        try:
            return parse_time(text, self.console.clock())
        except ValueError as exc:
            self.close_time_prompt()
            self.app.bell()
            self.app.notify(str(exc), title=title, severity="error")
            return None

    def _typing(self) -> None:
        if isinstance(self.focused, Input):
            raise SkipAction()

    def action_replay_goto(self) -> None:
        self._typing()
        if self.timeline() is None:
            self._no_history()
            return
        # the sparklines' history of the frame shown is not wanted while another is asked
        # for: its reading (whole chunks, which a cancel does not stop halfway) would still
        # share the CPU with the seek after Enter
        self.workers.cancel_group(self, "replay-history")
        self.history_on_hold = True
        self.ask_time("go to: 14:05, -10m or ISO 8601; Enter goes, Esc cancels", self._goto_typed)

    def _goto_typed(self, text: str) -> None:
        target = self._typed_time(text, "go to")
        if target is not None:
            # the prompt stays, showing what is sought, until the frame is found, and closes
            # (the focus back on the pane) in the paint of that frame: Textual repaints the
            # whole screen when the focus moves, so moving it now would paint every pane
            # once more while the seek reads
            self._seek(lambda timeline: timeline.frame_at(target))

    def action_live(self) -> None:
        if self.seeking:  # the seek's frame, when it comes, is not shown
            self.seeks_asked += 1
            self._seek_over()
            self.close_time_prompt()
            if not self.console.replaying:
                self.console.render_frame()  # what a repaint skipped while seeking
        if not self.console.replaying:
            return
        self.history_of = None
        self.console.show_live()
        self.show_timebar(False)
        self.render_header()

    def action_compare(self) -> None:
        if self.compare_then is not None:
            self.compare_off()
            return
        frame = self.console.frame
        if frame is not None:
            self._compare(frame, label_time(frame) - COMPARE_BEFORE_S)

    def compare_off(self) -> None:
        self.compare_then = None
        self.render_header()
        self.console.render_frame()

    def changes(self, frame: Frame) -> dict[Hashable, Change] | None:
        """Each row's change since the compared frame (None: compare is off)."""
        if self.compare_then is None:
            return None
        return {c.key: c for c in compare(self.compare_then, frame)}

    def action_compare_at(self) -> None:
        self._typing()
        if self.timeline() is None:
            self._no_history()
            return
        self.ask_time(
            "compare with: 14:05, -1h or ISO 8601; Enter compares, Esc cancels", self._compare_typed
        )

    def _compare_typed(self, text: str) -> None:
        target = self._typed_time(text, "compare")
        frame = self.console.frame
        self.close_time_prompt()
        if target is not None and frame is not None:
            self._compare(frame, target)

    # ---- workers and their answers ------------------------------------------------------------

    def _seek(
        self, find: Callable[[Timeline], Frame | None], after: Frame | None = None, ticks: int = 0
    ) -> None:
        timeline = self.timeline()
        if timeline is None:
            self._no_history()
            return
        # the sparklines' history of the frame shown before: not wanted any more, and it
        # would share the CPU with finding the next one
        self.workers.cancel_group(self, "replay-history")
        self.history_on_hold = False
        self.seeking = True
        self.seeks_asked += 1
        # No collector pass from here until the frame found is drawn: decoding a chunk makes
        # tens of thousands of objects, and a full pass that their count sets off walks all
        # the console's (tens of milliseconds, in the seek). What they leave is collected
        # after the paint (on_replay_frame).
        gc.disable()
        self._seek_worker(self.seeks_asked, timeline, find, after, ticks)

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _seek_worker(
        self,
        seek: int,
        timeline: Timeline,
        find: Callable[[Timeline], Frame | None],
        after: Frame | None,
        ticks: int,
    ) -> None:
        try:
            frame = find(timeline)
        except Exception as exc:  # a store that fails to read says so; the console stays up
            self.post_message(ReplayFrame(seek, None, f"{type(exc).__name__}: {exc}"))
            return
        why = "" if frame is not None else "nothing recorded there"
        self.post_message(ReplayFrame(seek, frame, why, after, ticks))

    def _seek_over(self) -> None:
        self.seeking = False
        # the collector back on after the paint; and, should that callback be lost (it goes
        # to whichever screen is on top, and a screen closed first drops it), by the app's
        # own timer a moment later, unless another seek has begun
        self.call_after_refresh(gc.enable)
        self.app.set_timer(SEEK_GC_BACKSTOP_S, self._collector_back)

    def _collector_back(self) -> None:
        if not self.seeking:
            gc.enable()

    def on_replay_frame(self, message: ReplayFrame) -> None:
        if message.seek != self.seeks_asked:  # a later seek, or L, took its place
            return
        self._seek_over()
        if self._time_answer is None:  # not a prompt opened again since
            self.close_time_prompt()
        frame = message.frame
        if frame is None:
            self.console.render_frame()  # what a repaint skipped while seeking
            self.app.bell()
            self.app.notify(message.why, title="replay", severity="warning")
            return
        app = self.console
        app.show_recorded(frame, self._history_at(frame, message))  # the header and panes
        self.seeks_shown += 1
        self.show_timebar(True)
        if app.paused or app.screen is not self:  # what show_recorded did not paint
            self.render_header()
        # the frame first, the sparklines' history a moment later: building it decodes up
        # to HISTORY_FRAMES frames, which must not hold up the frame asked for
        self.set_timer(HISTORY_DELAY_S, lambda: self._read_history(frame))

    def _history_at(self, frame: Frame, message: ReplayFrame) -> History:
        """The sparklines' history for a frame just found, as far as it is known without
        reading: a step of one tick from a frame whose history is held moves that history
        by the tick; otherwise none yet (never another moment's), until it is read."""
        app = self.console
        after, ticks = message.after, message.ticks
        known = after is not None and self.history_of is after and app.frame is after
        self.history_of = frame
        if known and after is not None:
            if frame.taken_at == after.taken_at:  # the first or last frame recorded
                return app.history
            if ticks == 1:
                history = app.history.copy()
                history.record(frame)
                return history
            if ticks == -1:
                return app.history.without_newest()
        self.history_of = None
        return History()

    def _read_history(self, frame: Frame) -> None:
        timeline = self.timeline()
        if self.seeking or self.history_on_hold:  # another frame is sought, or about to be
            return
        if timeline is not None and self.console.replaying and self.console.frame is frame:
            self._history_worker(timeline, frame)

    @work(thread=True, exclusive=True, group="replay-history", exit_on_error=False)
    def _history_worker(self, timeline: Timeline, frame: Frame) -> None:
        history = History()
        worker = get_current_worker()
        for f in timeline.frames_before(frame, HISTORY_FRAMES):
            if worker.is_cancelled:  # moved on to another frame already
                return
            history.record(f)
        self.post_message(ReplayHistory(frame, history))

    def on_replay_history(self, message: ReplayHistory) -> None:
        app = self.console
        if app.replaying and app.frame is message.frame:
            self.history_of = message.frame
            app.show_recorded(message.frame, message.history)

    def _compare(self, now: Frame, at: float) -> None:
        timeline = self.timeline()
        if timeline is None:
            self._no_history()
            return
        self._compare_worker(timeline, now, at)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _compare_worker(self, timeline: Timeline, now: Frame, at: float) -> None:
        self.post_message(CompareReady(timeline.frame_at(at), now, at))

    def on_compare_ready(self, message: CompareReady) -> None:
        if message.then is None or abs(label_time(message.then) - message.asked) > 120:
            self.app.bell()
            when = time.strftime("%H:%M:%S", time.localtime(message.asked))
            self.app.notify(f"nothing recorded at {when}", title="compare", severity="warning")
            return
        self.compare_then = message.then
        self.render_header()
        self.console.render_frame()

    # ---- the time bar and the header ----------------------------------------------------------

    def show_timebar(self, show: bool) -> None:
        self.timebar.set_class(show, "-show")
        if show:
            self.update_timebar()

    def update_timebar(self) -> None:
        app = self.console
        timeline = self.timeline()
        if not app.replaying or timeline is None or app.frame is None:
            return
        span = timeline.span()
        if span is None:
            return
        width = max(app.size.width - 2, 20)
        left = time.strftime("%m-%d %H:%M", time.localtime(span[0]))
        inner = width - len(left) - len(" now") - 1
        bar = timeline.bar(inner, label_time(app.frame), self.console.clock())
        self.timebar.set(f"{escape(left)} {bar} now")

    def replay_badge(self) -> str:
        """The header's badges: replay's, and compare's (the moment the changes are since)."""
        app = self.console
        badge = replay_badge(app.frame, self.console.clock()) if app.replaying and app.frame else ""
        if self.compare_then is not None:
            then = label_time(self.compare_then)
            shown = (
                "%H:%M:%S"
                if app.frame is None or abs(label_time(app.frame) - then) < 86400
                else "%m-%d %H:%M"
            )
            compared = f"[reverse b] Δ since {time.strftime(shown, time.localtime(then))} [/]"
            badge = f"{badge} {compared}" if badge else compared
        return badge
