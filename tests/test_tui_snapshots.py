"""SVG snapshots (pytest-textual-snapshot) of the console with deterministic fake Frames.

Update after an intended change of look: .venv/bin/pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time

from obs_tui.tui.app import FrameReady, ObsApp
from tests.fake_frames import FakeEngine, full_frame, off_frame


def app_with(frame_fn=full_frame, theme="dark") -> ObsApp:
    return ObsApp(lambda: FakeEngine(frame_fn), theme_name=theme)


def feed(frame_fn=full_frame, frames: int = 24, keys: tuple[str, ...] = ()):
    """run_before: wait for the first frame, feed a fixed history, then press keys."""

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
