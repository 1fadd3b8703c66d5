"""Energy is never finer than a second, on any surface, whatever the refresh interval.

Fine-grained energy readings leak secrets (Platypus, CVE-2020-8694). The real PowerSource on
a fake powercap tree (there is no RAPL here), ticked by the real engine every 0.1 s: host and
process watts and joules change at most once a second, and what they show is right (40 W,
not ten times that for a tenth of the window). The same through `snapshot --duration 0.1`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from obs_tui.engine import Engine
from obs_tui.pipeline import stages
from obs_tui.sources.power import ENERGY_WINDOW_S, WINDOW_SLACK_S, PowerSource
from tests.power_fakes import FakeRapl, FakeZone

SHORTEST = ENERGY_WINDOW_S - WINDOW_SLACK_S


def shown(frame) -> tuple:
    p = frame.power
    return (p.host_watts, p.host_joules, p.zones, tuple((q.pid, q.watts, q.joules) for q in p.processes))


def test_a_tenth_of_a_second_interval_shows_energy_once_a_second(tmp_path):
    with FakeRapl(tmp_path, [FakeZone("intel-rapl:0", "package-0", 40.0)]):
        source = PowerSource(str(tmp_path), str(tmp_path / "no-hwmon"), use_ebpf=False)
        engine = Engine(stages([source]), interval=0.1)
        frames = []
        try:
            started = time.monotonic()
            while time.monotonic() - started < 3.6:
                frames.append((time.monotonic(), engine.tick()))
                time.sleep(0.1)
        finally:
            engine.close()
    assert frames[-1][1].power.source == "rapl"
    changes = [t for (t, f), (_, before) in zip(frames[1:], frames) if shown(f) != shown(before)]
    assert len(frames) > 20 and len(changes) >= 2, (len(frames), changes)
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    assert all(gap >= SHORTEST - 0.02 for gap in gaps), gaps  # 0.02: our own tick's jitter
    for _, frame in frames:
        p = frame.power
        if p.window_s:  # a complete window: at least a second long, and the right watts
            assert p.window_s >= SHORTEST and abs(p.host_watts - 40.0) <= 1.0, p
        else:  # the first window is not complete yet: nothing measured, nothing shown
            assert p.host_watts == 0.0 and p.host_joules == 0.0
    last = frames[-1][1].power
    assert abs(last.host_joules - 40.0 * last_window_total(frames)) <= 2.0


def last_window_total(frames) -> float:
    """Seconds covered by the windows shown so far (the sum of the distinct windows)."""
    total, seen = 0.0, None
    for _, f in frames:
        key = shown(f)
        if key != seen and f.power.window_s:
            total += f.power.window_s
        seen = key
    return total


@pytest.mark.skipif(os.geteuid() != 0, reason="snapshot loads its probes as root")
@pytest.mark.parametrize("duration", ["0.1", "1.5"])
def test_snapshot_never_reports_energy_over_less_than_a_second(tmp_path, duration):
    tree = tmp_path / "powercap"
    config = tmp_path / "obs.toml"
    config.write_text(f'[power]\npowercap_root = "{tree}"\nhwmon_root = "{tmp_path / "none"}"\n')
    with FakeRapl(tree, [FakeZone("intel-rapl:0", "package-0", 40.0)]):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "obs_tui",
                "--config",
                str(config),
                "--interval",
                "0.1",
                "snapshot",
                "--json",
                "--duration",
                duration,
            ],
            capture_output=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    power = doc["power"]
    if float(duration) < SHORTEST:
        # no reading inside the window: no power figure at all, never a 0.1 s one
        assert power is None and doc["sources"]["power"]["mode"] == "live", doc
    else:
        assert power["source"] == "rapl"
        assert power["window_s"] >= SHORTEST and abs(power["host_watts"] - 40.0) <= 1.0, power
