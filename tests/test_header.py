"""The header's layout (pure): what fits the width, widest wording first."""

import dataclasses

from obs_tui.model import SourceStatus
from obs_tui.tui.header import badges, header_markup, plain
from tests.fake_frames import HOST, full_frame, off_frame


def test_starting_before_the_first_frame():
    assert plain(header_markup(None, 160)) == "obs-tui  starting… (loading sources)"
    assert plain(header_markup(None, 160, read_only=True)).endswith("read-only ")


def test_wide_has_everything_and_the_state_on_the_right():
    text = plain(header_markup(full_frame(1), 160, paused=True))
    assert text.startswith(f"obs-tui  {HOST}  up ") and "every 1s" in text
    assert "procs live" in text and "power estimate" in text
    assert text.endswith(" PAUSED ") and len(text) == 160


def test_failing_sources_keep_their_reason_while_it_fits():
    frame = off_frame(1)
    assert ("red", "off", "needs root (CAP_BPF and CAP_PERFMON)") in badges(frame)
    wide = plain(header_markup(frame, 160))
    assert "red off: needs root" in wide
    narrow = plain(header_markup(frame, 60))
    assert len(narrow) <= 60 and HOST in narrow
    assert "live" in narrow  # abbreviated: the live sources share one badge


def test_every_width_fits_down_to_the_smallest_console():
    frame = off_frame(1)
    for width in range(60, 200, 7):
        for error in ("", "engine tick failed: a long reason that goes on and on"):
            text = plain(header_markup(frame, width, error=error))
            assert len(text) <= max(width, len(plain(header_markup(frame, 0, error=error))))


def test_a_join_shows_only_its_failure():
    frame = full_frame(1)
    joined = dataclasses.replace(frame, sources=(*frame.sources, SourceStatus("carbon", "live", join=True)))
    assert "carbon" not in plain(header_markup(joined, 200))
    failed = dataclasses.replace(
        frame, sources=(*frame.sources, SourceStatus("carbon", "live", "boom", stale=True, join=True))
    )
    assert "carbon stale" in plain(header_markup(failed, 200))


def test_fleet_shows_the_chosen_host_and_replay_its_badge():
    frame = dataclasses.replace(full_frame(1), instances=("a:9100", "b:9100"), instance="")
    assert "all 2 hosts" in plain(header_markup(frame, 160))
    chosen = dataclasses.replace(frame, instance="b:9100")  # the frame names the host it is of
    assert "b:9100" in plain(header_markup(chosen, 160))
    assert plain(header_markup(frame, 160, recorded="[b]REPLAY 12:00[/]")).startswith("REPLAY 12:00 obs-tui")
