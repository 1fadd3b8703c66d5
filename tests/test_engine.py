"""Engine: failure isolation between sources, immutable Frames, windows from the clock."""

import dataclasses

import pytest

from obs_tui import engine as engine_mod
from obs_tui.engine import Engine
from obs_tui.model import Capability
from obs_tui.sources.procs import ProcsSource


class FlakySource:
    """A source whose sample raises on demand (stands for a probe or a remote that failed)."""

    name = "flaky"
    mode = "live"

    def __init__(self):
        self.fail = False
        self.closed = False

    def available(self):
        return Capability(True)

    def sample(self, now):
        if self.fail:
            raise OSError("device went away")
        return now

    def close(self):
        self.closed = True


class MissingSource:
    name = "missing"
    mode = "live"

    def available(self):
        return Capability(False, "no such hardware here")

    def sample(self, now):
        raise AssertionError("an unavailable source must never be sampled")

    def close(self):
        pass


class BrokenAvailability(MissingSource):
    name = "broken"

    def available(self):
        raise PermissionError("cannot probe")


@pytest.fixture
def flaky_analysis(monkeypatch):
    monkeypatch.setitem(engine_mod.ANALYSES, "flaky", ("slo", lambda prev, cur, dt: (cur,)))


def test_failing_source_is_stale_and_others_go_on(flaky_analysis):
    flaky = FlakySource()
    eng = Engine([ProcsSource(), flaky, MissingSource(), BrokenAvailability()])
    first = eng.tick(100.0)
    assert first.slo == (100.0,)
    assert first.source("flaky").mode == "live" and not first.source("flaky").stale
    assert first.source("missing").mode == "off" and "hardware" in first.source("missing").reason
    # an OSError as the system words it; no exception class names on a surface
    assert first.source("broken").mode == "off" and first.source("broken").reason == "cannot probe"

    flaky.fail = True
    second = eng.tick(101.0)
    status = second.source("flaky")
    assert status.stale and "device went away" in status.reason
    assert second.slo == (100.0,), "a stale source keeps its last section"
    assert len(second.processes) > 0 and not second.source("procs").stale

    flaky.fail = False
    third = eng.tick(102.0)
    assert not third.source("flaky").stale and third.slo == (102.0,)
    eng.close()
    assert flaky.closed


def test_analysis_failure_is_isolated(monkeypatch):
    def explode(prev, cur, dt):
        raise ZeroDivisionError("bad maths")

    monkeypatch.setitem(engine_mod.ANALYSES, "flaky", ("slo", explode))
    eng = Engine([FlakySource(), ProcsSource()])
    frame = eng.tick(1.0)
    assert frame.source("flaky").stale and "bad maths" in frame.source("flaky").reason
    assert frame.processes


def test_frames_are_immutable_and_windowed():
    eng = Engine([ProcsSource()], capabilities={"ebpf": Capability(False, "x")})
    first = eng.tick(10.0)
    second = eng.tick(12.5)
    assert first.duration_s == 0.0 and second.duration_s == 2.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.host = "other"
    assert second.capability("ebpf") == Capability(False, "x")
