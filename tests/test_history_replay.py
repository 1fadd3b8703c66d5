"""Replay and compare in the console (Textual Pilot) over a real store, and compare's maths."""

import dataclasses
import gc
import threading
import time

from obs_tui.analysis.compare import METRICS, compare
from obs_tui.history.timeline import label_time
from obs_tui.tui import fmt
from obs_tui.tui.app import ObsApp
from obs_tui.tui.panes.power import PowerPane
from obs_tui.tui.panes.requests import RequestsPane
from tests import fake_frames
from tests.test_history_store import record
from tests.test_tui import aio


def test_compare_sorts_the_biggest_movers_first():
    then, now = fake_frames.full_frame(0), fake_frames.full_frame(0)
    nginx = now.red.services[0]
    busier = dataclasses.replace(nginx, rps=nginx.rps + 500.0)
    now = dataclasses.replace(now, red=dataclasses.replace(now.red, services=(busier, *now.red.services[1:])))
    rows = compare(then, now)
    assert rows[0].key == nginx.pid and rows[0].delta(0) == 500.0
    assert rows[0].score == 500.0 / dict(METRICS)["rps"]
    assert all(r.score == 0 for r in rows[1:])  # nothing else moved
    gone = compare(now, dataclasses.replace(now, red=None))
    assert gone[0].now[0] is None and gone[0].then[0] is not None


class Live(fake_frames.FakeEngine):
    def __init__(self, store):
        super().__init__(lambda i: dataclasses.replace(fake_frames.full_frame(i), taken_at=time.time()))
        self.history = store
        self.history_note = ""


def _replay_store(tmp_path):
    """Two minutes recorded from an hour and a minute ago, and the last two minutes."""
    now = time.time()
    record(tmp_path, 120, start=now - 3660, chunk_s=30.0).close()
    return record(tmp_path, 120, start=now - 125, chunk_s=30.0), now


async def _until(pilot, condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.02)


async def _back_one_tick(pilot, app):
    """From live, `[`: the newest recorded frame."""
    await _until(pilot, lambda: app.live_frame is not None)
    await pilot.press("left_square_bracket")
    await _until(pilot, lambda: app.replaying)


@aio
async def test_steps_minutes_goto_and_live(tmp_path):
    store, now = _replay_store(tmp_path)
    app = ObsApp(lambda: Live(store))
    async with app.run_test(size=(160, 48)) as pilot:
        await _until(pilot, lambda: app.live_frame is not None)
        await pilot.press("right_square_bracket")  # nothing newer than live
        assert not app.replaying
        await _back_one_tick(pilot, app)
        newest = app.frame.taken_at
        assert abs(newest - (now - 6)) < 0.01  # the newest recorded frame
        await pilot.press("left_curly_bracket")
        await _until(pilot, lambda: app.frame.taken_at < newest - 30)
        assert abs(app.frame.taken_at - (newest - 60)) <= 1.0
        await pilot.press("left_square_bracket")
        await _until(pilot, lambda: abs(app.frame.taken_at - (newest - 61)) <= 1.0)
        # the sparklines' history is the recorded one, up to the frame shown
        await _until(pilot, lambda: app.history is not app.live_history and app.history.frames > 30)
        bar = app.main.query_one("#timebar").markup
        assert "▼" in bar and "  " in bar  # the gap of an hour shows as blank
        target = int(now - 3630)
        await pilot.press("g", *time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(target)), "enter")
        await _until(pilot, lambda: app.frame.taken_at < now - 3000)
        middle = app.frame.taken_at - app.frame.duration_s / 2
        assert target <= middle < target + 1.0  # the first tick whose middle is at or after it
        assert "REPLAY" in app.main.query_one("#header").markup
        assert app.main.keys._plain.startswith("L live")  # the way back, first among the keys
        await pilot.press("L")
        await _until(pilot, lambda: not app.replaying)
        assert app.frame is app.live_frame and app.history is app.live_history
        await _until(pilot, lambda: app.main.keys._plain.startswith("q quit"))
        assert not app.main.query_one("#timebar").has_class("-show")
    store.close()


@aio
async def test_a_seek_repaints_the_panes_only_with_the_frame_it_found(tmp_path):
    """Neither the `g` prompt closing nor a live frame arriving while the seek reads repaints
    the panes (that work would share the CPU with the seek): from Enter on, the panes are
    painted with the recorded frame, then once more with its sparklines' history. The
    garbage collector is off from Enter until that first paint."""
    store, now = _replay_store(tmp_path)
    app = ObsApp(lambda: Live(store))
    async with app.run_test(size=(160, 48)) as pilot:
        await _until(pilot, lambda: app.live_frame is not None)
        shown, collecting = [], []
        show_frame = app.main.show_frame

        def counted(frame, history):
            shown.append(frame)
            collecting.append(gc.isenabled())
            show_frame(frame, history)

        app.main.show_frame = counted
        target = int(now - 3630)
        await pilot.press("g", *time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(target)))
        shown.clear()
        collecting.clear()
        await pilot.press("enter")
        await _until(pilot, lambda: app.replaying)
        await _until(pilot, lambda: app.main.history_of is app.frame and app.history.frames > 0)  # read
        await pilot.pause(0.2)
        assert label_time(app.frame) >= target
        # twice: the frame found, then with its sparklines' history
        assert shown == [app.frame, app.frame], [label_time(f) for f in shown]
        assert not app.main.seeking
        # no collector pass from Enter to the found frame's paint; collecting again after it
        assert collecting == [False, True] and gc.isenabled()
    store.close()


@aio
async def test_live_during_a_seek_stays_live_and_the_seek_is_dropped(tmp_path):
    """L while a step is being read: live it is, the step's frame is not shown when it comes
    (a thread worker cannot be stopped), and the collector is on again."""
    store, now = _replay_store(tmp_path)
    app = ObsApp(lambda: Live(store))
    async with app.run_test(size=(160, 48)) as pilot:
        await _back_one_tick(pilot, app)
        timeline = app.main.timeline()
        step, release = timeline.step, threading.Event()

        def held(*args):
            release.wait(10)
            return step(*args)

        timeline.step = held
        await pilot.press("left_square_bracket")
        await _until(pilot, lambda: app.main.seeking)
        assert not gc.isenabled()
        await pilot.press("L")
        assert not app.replaying and not app.main.seeking and gc.isenabled()
        release.set()
        await _until(pilot, lambda: not any(w.is_running for w in app.main.workers))
        await pilot.pause(0.2)
        assert not app.replaying and app.frame is app.live_frame
    store.close()


@aio
async def test_a_step_moves_the_sparklines_history_a_jump_shows_none_until_read(tmp_path):
    """A step of one tick paints at once with the history it had moved by that tick (what
    reading it gives); a jump paints with no history, never another moment's, until read."""
    store, now = _replay_store(tmp_path)
    app = ObsApp(lambda: Live(store))
    async with app.run_test(size=(160, 48)) as pilot:
        await _back_one_tick(pilot, app)
        await _until(pilot, lambda: app.main.history_of is app.frame and app.history.frames > 30)
        read, before = app.history, app.frame
        await pilot.press("left_square_bracket")
        await _until(pilot, lambda: app.frame is not before)
        stepped = app.history
        assert stepped.frames == read.frames - 1 and app.main.history_of is app.frame
        await _until(pilot, lambda: app.history is not stepped)  # the frame's own history, read
        assert stepped._series and stepped._series.keys() <= app.history._series.keys()
        for (metric, key), series in stepped._series.items():
            assert list(series) == list(app.history.get(metric, key))[-len(series) :], (metric, key)
        target = int(now - 3630)
        await pilot.press("g", *time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(target)), "enter")
        await _until(pilot, lambda: app.frame.taken_at < now - 3000)
        assert app.history.frames == 0 and not app.history.get("rps", app.frame.red.services[0].key)
        # g holds the reading back (it would share the CPU with the next seek); Esc: read it
        await pilot.press("g")
        assert app.main.history_on_hold and app.main.time_box.display
        await pilot.press("escape")
        assert not app.main.time_box.display and app.focused is app.main.pane.table
        await _until(pilot, lambda: app.history.frames > 0 and app.main.history_of is app.frame)
    store.close()


@aio
async def test_compare_adds_change_columns_to_the_panes(tmp_path):
    """c: the panes get change columns against the frame an hour before the one shown, sorted
    by the biggest movers, and the header says since when; c again: off, the sort as before."""
    store, now = _replay_store(tmp_path)
    app = ObsApp(lambda: Live(store))
    async with app.run_test(size=(160, 48)) as pilot:
        await _back_one_tick(pilot, app)
        requests = app.main.query_one(RequestsPane)
        sort_before = requests.sort_col
        assert "d_rps" not in requests.table.visible_columns()
        await pilot.press("c")
        await _until(pilot, lambda: app.main.compare_then is not None and requests.changes is not None)
        shown, then = app.frame, app.main.compare_then
        assert abs(label_time(then) - (label_time(shown) - 3600)) <= 1.0
        assert "Δ since " + time.strftime("%H:%M:%S", time.localtime(label_time(then))) in (
            app.main.query_one("#header").markup
        )
        assert {"d_rps", "d_err", "d_p99"} <= set(requests.table.visible_columns())
        changes = compare(then, shown)
        nginx = shown.red.services[0]
        want = next(c for c in changes if c.key == nginx.key)
        cells = dict(zip([c.key for c in requests.COLUMNS], requests.cells(nginx)))
        delta = want.delta(0)
        assert cells["d_rps"] == (
            "" if abs(delta) < 1e-9 else ("+" if delta > 0 else "-") + fmt.num(abs(delta))
        )
        # the rows shown are in the order of how much they moved
        scores = {c.key: c.score for c in changes}
        shown_keys = requests._rank
        order = sorted(shown_keys, key=shown_keys.get)
        assert [scores.get(k, 0.0) for k in order] == sorted(
            (scores.get(k, 0.0) for k in order), reverse=True
        )
        assert requests.sort_col == "d_rps" and "biggest movers" in requests.border_subtitle
        power = app.main.query_one(PowerPane)
        assert "d_w" in power.table.visible_columns()
        await pilot.press("c")
        await _until(pilot, lambda: requests.changes is None)
        assert "d_rps" not in requests.table.visible_columns() and requests.sort_col == sort_before
        assert "Δ since" not in app.main.query_one("#header").markup
    store.close()


@aio
async def test_compare_at_80x24_keeps_the_change_columns_first(tmp_path):
    store, _ = _replay_store(tmp_path)
    app = ObsApp(lambda: Live(store))
    async with app.run_test(size=(80, 24)) as pilot:
        await _back_one_tick(pilot, app)
        await pilot.press("2")  # at 80x24 only the focused pane has its table
        await pilot.press("c")
        requests = app.main.query_one(RequestsPane)
        await _until(pilot, lambda: requests.changes is not None)
        await pilot.pause(0.1)
        visible = requests.table.visible_columns()
        assert {"comm", "rps", "err", "d_rps", "d_err", "d_p99"} <= set(visible)
        assert not {"p50", "p95"} & set(visible)  # the first to give way
    store.close()


@aio
async def test_without_history_the_keys_say_why(tmp_path):
    engine = fake_frames.FakeEngine()
    engine.history_note = "history off: cannot create /nope"
    app = ObsApp(lambda: engine)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await _until(pilot, lambda: app.live_frame is not None)
        await pilot.press("left_square_bracket")
        await pilot.pause(0.2)
        assert not app.replaying
        assert any("cannot create /nope" in n.message for n in app._notifications)
