"""SVG snapshots (pytest-textual-snapshot) of the console with deterministic fake Frames.

Update after an intended change of look: .venv/bin/pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import dataclasses
import time

from obs_tui.history.recorder import Recorder
from obs_tui.history.store import Store
from obs_tui.tui.app import FrameReady, ObsApp
from tests import fake_frames
from tests.fake_frames import FakeEngine, full_frame, off_frame


def app_with(frame_fn=full_frame, theme="dark") -> ObsApp:
    return ObsApp(lambda: FakeEngine(frame_fn), theme_name=theme)


def feed(frame_fn=full_frame, frames: int = 24, keys: tuple[str, ...] = (), until=None):
    """run_before: wait for the first frame, feed a fixed history, then press keys (and wait
    until `until(app)` holds, for what a key starts in a worker)."""

    async def run_before(pilot) -> None:
        app = pilot.app
        for _ in range(300):
            if app.frames:
                break
            await pilot.pause(0.01)
        for i in range(1, frames + 1):
            app.post_message(FrameReady(frame_fn(i), time.monotonic()))
            await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        for _ in range(500 if until is not None else 0):
            if until(app):
                break
            await pilot.pause(0.01)
        await pilot.pause()

    return run_before


def test_four_panes_80x24(snap_compare):
    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=feed())


def test_four_panes_160x48(snap_compare):
    assert snap_compare(app_with(), terminal_size=(160, 48), run_before=feed())


def test_everything_off_80x24(snap_compare):
    assert snap_compare(app_with(off_frame), terminal_size=(80, 24), run_before=feed(off_frame))


def test_everything_off_160x48(snap_compare):
    assert snap_compare(app_with(off_frame), terminal_size=(160, 48), run_before=feed(off_frame))


def test_narrow_requests_focused(snap_compare):
    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=feed(keys=("tab",)))


def test_too_small(snap_compare):
    assert snap_compare(app_with(), terminal_size=(50, 12), run_before=feed(frames=1))


def test_help(snap_compare):
    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=feed(keys=("f1",)))


def test_service_detail(snap_compare):
    assert snap_compare(app_with(), terminal_size=(100, 32), run_before=feed(keys=("tab", "enter")))


def test_service_detail_undecoded(snap_compare):
    """A service whose TLS obs-tui cannot decrypt: the line that says what is not seen and why."""
    assert snap_compare(
        app_with(), terminal_size=(100, 32), run_before=feed(keys=("tab", "down", "down", "down", "enter"))
    )


def test_light_theme(snap_compare):
    assert snap_compare(app_with(theme="light"), terminal_size=(160, 48), run_before=feed())


def test_mono_theme(snap_compare):
    assert snap_compare(app_with(theme="mono"), terminal_size=(80, 24), run_before=feed())


def test_carbon_zoomed_80x24(snap_compare):
    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=feed(keys=("4",)))


def compare_app(tmp_path) -> ObsApp:
    """The demo host live, with a store that recorded it an hour before (frames 0..199 of
    fake_frames from T0 - 3700 s), and a fixed wall clock: `c` compares the frame shown with
    the one recorded an hour before it, and what is drawn does not depend on when it runs."""
    store = Store(tmp_path / "history", writer=True)
    tick = [0.0]
    recorder = Recorder(store, "test", clock=lambda: tick[0], chunk_s=60.0)
    for i in range(200):
        tick[0] = float(i)
        recorder(dataclasses.replace(full_frame(i), taken_at=fake_frames.T0 - 3700 + i))
    recorder.close()

    class Recorded(FakeEngine):
        history = store
        history_note = ""

    return ObsApp(lambda: Recorded(), clock=lambda: fake_frames.T0 + 30)


def _comparing(app) -> bool:
    return app.main.compare_then is not None


def test_compare_80x24(snap_compare, tmp_path):
    """Compare at 80x24: the focused pane (Power) with ΔW beside W at the W column's precision
    (a change smaller than it shows is blank, not "-0.00W"), and the header's "Δ since"."""
    assert snap_compare(
        compare_app(tmp_path), terminal_size=(80, 24), run_before=feed(keys=("c",), until=_comparing)
    )


def test_compare_requests_80x24(snap_compare, tmp_path):
    """Requests zoomed at 80x24: ΔRPS, ΔERR% and ΔP99 beside the figures they compare."""
    assert snap_compare(
        compare_app(tmp_path), terminal_size=(80, 24), run_before=feed(keys=("2", "c"), until=_comparing)
    )


def test_compare_160x48(snap_compare, tmp_path):
    """Compare with every pane's change columns: ΔRPS ΔERR% ΔP99, ΔW, Δg/h."""
    assert snap_compare(
        compare_app(tmp_path), terminal_size=(160, 48), run_before=feed(keys=("c",), until=_comparing)
    )
