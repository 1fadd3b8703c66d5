"""Engine: failure isolation between sources, immutable Frames, windows from the clock."""

import dataclasses

import pytest

from obs_tui.engine import Engine, Stage
from obs_tui.model import Capability
from obs_tui.pipeline import procs_stage, red_stage
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


def flaky_stage(source, analysis=lambda prev, cur, dt: (cur,)):
    """A test's own stage: the flaky source's section in the Frame's `slo` field."""
    return Stage(source, analysis, "slo")


def test_failing_source_is_stale_and_others_go_on():
    flaky = FlakySource()
    eng = Engine(
        [
            procs_stage(ProcsSource()),
            flaky_stage(flaky),
            flaky_stage(MissingSource()),
            flaky_stage(BrokenAvailability()),
        ]
    )
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


def test_analysis_failure_is_isolated():
    def explode(prev, cur, dt):
        raise ZeroDivisionError("bad maths")

    eng = Engine([flaky_stage(FlakySource(), explode), procs_stage(ProcsSource())])
    frame = eng.tick(1.0)
    assert frame.source("flaky").stale and "bad maths" in frame.source("flaky").reason
    assert frame.processes


def test_frames_are_immutable_and_windowed():
    eng = Engine([procs_stage(ProcsSource())], capabilities={"ebpf": Capability(False, "x")})
    first = eng.tick(10.0)
    second = eng.tick(12.5)
    assert first.duration_s == 0.0 and second.duration_s == 2.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.host = "other"
    assert second.capability("ebpf") == Capability(False, "x")


def test_a_rate_after_a_failed_sample_covers_the_time_since_the_last_good_one():
    """FlakySource's raw is its clock: cur - prev over dt is 1.0 whenever dt is the time
    between the two raws compared."""
    flaky = FlakySource()
    eng = Engine(
        [flaky_stage(flaky, lambda prev, cur, dt: ((cur - prev) / dt if prev is not None and dt else None,))]
    )
    assert eng.tick(100.0).slo == (None,)
    assert eng.tick(101.0).slo == (1.0,)
    flaky.fail = True
    eng.tick(102.0)
    flaky.fail = False
    assert eng.tick(103.0).slo == (1.0,), "raws 2 s apart, not the engine's 1 s tick"


def test_a_window_compares_with_its_start_and_folds_power_ticks():
    """While a window is open: a cumulative source is compared with its raw at the window's
    start; a folded one (power) sums its ticks; the Frame's duration is the window."""
    flaky = FlakySource()
    eng = Engine([flaky_stage(flaky, lambda prev, cur, dt: (prev, cur, dt))])
    eng.tick(100.0)
    eng.tick(101.0)
    eng.open_window()
    assert eng.tick(102.0).slo == (101.0, 102.0, 1.0)
    flaky.fail = True
    eng.tick(103.0)
    flaky.fail = False
    frame = eng.tick(104.5)
    assert frame.slo == (101.0, 104.5, 3.5) and frame.duration_s == 3.5


def test_a_window_keeps_the_requests_of_a_process_the_source_forgot():
    """The RED source forgets an exited process's counters 30 s after it died; a longer window
    still holds its requests (and its name), compared with the window's start."""
    from obs_tui.analysis import histogram as h
    from obs_tui.raw import RedRaw, ServiceInfo, StatEntry, StatKey

    def entry(count):
        return StatEntry(count, count * 1_000_000, ((h.bucket_of(1_000_000), count),))

    a, b = StatKey(7, "GET", 200, "/a"), StatKey(8, "GET", 200, "/b")
    info = {7: ServiceInfo("worker", "", ()), 8: ServiceInfo("api", "", (80,))}

    class Probe:
        name, mode = "red", "live"
        raws = [
            RedRaw(0, {a: entry(5), b: entry(1)}, info),  # the window's start
            RedRaw(0, {a: entry(9), b: entry(2)}, info),  # worker answers 4 more, exits
            RedRaw(0, {b: entry(6)}, {8: info[8]}),
        ]  # ... and is forgotten

        def available(self):
            return Capability(True)

        def sample(self, now):
            return self.raws.pop(0)

        def close(self):
            pass

    eng = Engine([red_stage(Probe())])
    eng.tick(100.0)
    eng.open_window()
    eng.tick(101.0)
    frame = eng.tick(140.0)
    assert {(s.pid, s.comm, s.requests) for s in frame.red.services} == {(7, "worker", 4), (8, "api", 5)}
    assert frame.duration_s == 40.0
