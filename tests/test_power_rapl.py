"""RAPL readers on fake powercap/hwmon trees driven at known wattages, through the real
readers, the real PowerSource and the real attribution."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from obs_tui import doctor
from obs_tui.analysis.attribution import power_section
from obs_tui.sources.power import PowerSource
from obs_tui.sources.rapl import HwmonEnergyReader, PowercapReader, open_meter
from tests import servers
from tests.power_fakes import FakeRapl, FakeZone

NOBODY = 65534


def measure(fake: FakeRapl, root: Path, hwmon_root: Path | None = None, window: float = 1.5, ticks: int = 1):
    """Sections from the real PowerSource (CPU time from /proc: these tests are about energy),
    each sample taken on counters the fake has just written (FakeRapl.held)."""
    source = PowerSource(str(root), str(hwmon_root or root / "no-hwmon"), use_ebpf=False)
    cap = source.available()
    assert cap.ok, cap.reason

    def sample():
        with fake.held() as now:
            return source.sample(0.0), now

    try:
        prev, t_prev = sample()
        sections = []
        for _ in range(ticks):
            time.sleep(window)
            cur, t = sample()
            sections.append(power_section(prev, cur, t - t_prev))
            prev, t_prev = cur, t
        return source, sections
    finally:
        source.close()


def near(value: float, expected: float, tol: float = 0.01) -> bool:
    return abs(value - expected) <= tol * expected


def test_one_socket_package_plus_dram_is_the_host(tmp_path):
    zones = [
        FakeZone("intel-rapl:0", "package-0", 40.0),
        FakeZone("intel-rapl:0:0", "core", 25.0),
        FakeZone("intel-rapl:0:1", "uncore", 3.0),
        FakeZone("intel-rapl:0:2", "dram", 6.0),
    ]
    with FakeRapl(tmp_path, zones) as fake:
        source, (s,) = measure(fake, tmp_path)
    assert source.mode == "live" and s.source == "rapl"
    # dram is not inside the package on Intel: host = package + dram; core/uncore are inside
    assert near(s.host_watts, 46.0), s
    assert dict(s.zones).keys() == {"package-0", "dram-0"}
    assert near(dict(s.zones)["package-0"], 40.0) and near(dict(s.zones)["dram-0"], 6.0)
    assert near(dict(s.subzones)["core-0"], 25.0) and near(dict(s.subzones)["uncore-0"], 3.0)


def test_two_sockets_sum(tmp_path):
    zones = [
        FakeZone("intel-rapl:0", "package-0", 30.0),
        FakeZone("intel-rapl:0:0", "dram", 5.0),
        FakeZone("intel-rapl:1", "package-1", 50.0),
        FakeZone("intel-rapl:1:0", "dram", 7.0),
    ]
    with FakeRapl(tmp_path, zones) as fake:
        _, (s,) = measure(fake, tmp_path)
    assert near(s.host_watts, 92.0), s
    assert {k: round(v) for k, v in s.zones} == {"package-0": 30, "dram-0": 5, "package-1": 50, "dram-1": 7}


def test_counter_wrapping_mid_run_is_never_negative_nor_dropped(tmp_path):
    # 60 W into a 400 J counter starting 10 J below the top: it wraps in the first tick (at
    # least 60 J: energy is read once a second at most) and again ~7 s later; every tick must
    # still read 60 W. The range stays above twice a window's energy even when a busy
    # machine stretches the 1 s window to 3 s (beyond that a backwards step reads as a reset).
    zones = [FakeZone("intel-rapl:0", "package-0", 60.0, max_uj=400_000_000, start_uj=390_000_000)]
    with FakeRapl(tmp_path, zones) as fake:
        _, sections = measure(fake, tmp_path, window=1.0, ticks=4)
    for s in sections:
        assert s.host_watts > 0 and near(s.host_watts, 60.0, 0.02), s.host_watts


def test_psys_is_the_host_and_packages_become_breakdown(tmp_path):
    zones = [
        FakeZone("intel-rapl:0", "package-0", 35.0),
        FakeZone("intel-rapl:0:0", "core", 20.0),
        FakeZone("intel-rapl:0:1", "dram", 4.0),
        FakeZone("intel-rapl:1", "psys", 55.0),
    ]
    with FakeRapl(tmp_path, zones) as fake:
        _, (s,) = measure(fake, tmp_path)
    assert near(s.host_watts, 55.0), s  # not 35 + 4 + 55: psys already holds them
    assert [name for name, _ in s.zones] == ["psys"]
    assert {name for name, _ in s.subzones} == {"package-0", "core-0", "dram-0"}


def test_amd_energy_hwmon_reader(tmp_path):
    hw = tmp_path / "hwmon"
    zones = [FakeZone("hwmon3/energy1", "Esocket0", 70.0), FakeZone("hwmon3/energy2", "Ecore000", 9.0)]
    with FakeRapl(hw, zones, hwmon=True) as fake:
        source, (s,) = measure(fake, tmp_path / "no-powercap", hwmon_root=hw)
    assert source.meter.kind == "amd_energy"
    assert [name for name, _ in s.zones] == ["package-0"] and near(s.host_watts, 70.0)


def test_no_zones_falls_back_to_the_estimate(tmp_path):
    cap = PowercapReader(str(tmp_path)).open()
    assert not cap.ok and cap.reason == f"no RAPL zones in {tmp_path}"
    source = PowerSource(str(tmp_path), str(tmp_path), use_ebpf=False)
    assert source.available().ok and source.mode == "estimate"
    assert "no RAPL zones" in source.reason
    source.close()


def _in_child_as_nobody(fn) -> dict:
    """Run fn() in a forked child after dropping to user nobody; its dict result comes back
    as JSON through a pipe. Root passes every permission check, so the EACCES path is only
    honest as another user."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = fn()
        except BaseException as exc:  # report anything to the parent rather than die silently
            out, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        os.write(w, json.dumps(out).encode())
        os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.fixture
def world_readable_dir():
    # pytest's tmp_path lives under a 0700 directory nobody cannot enter
    d = Path(tempfile.mkdtemp(prefix="obs-tui-rapl-"))
    d.chmod(0o755)
    yield d
    for path in sorted(d.rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
    d.rmdir()


def test_eacces_gives_a_clear_reason_not_a_crash(world_readable_dir):
    root = world_readable_dir
    with FakeRapl(root, [FakeZone("intel-rapl:0", "package-0", 10.0)]):
        for p in [root / "intel-rapl:0"]:
            p.chmod(0o755)

        def as_nobody():
            cap = PowercapReader(str(root)).open()
            source = PowerSource(str(root), str(root), use_ebpf=False)
            src_cap = source.available()
            check = doctor.check_rapl(str(root), str(root))
            return {
                "ok": cap.ok,
                "reason": cap.reason,
                "source_ok": src_cap.ok,
                "mode": source.mode,
                "source_reason": source.reason,
                "check_ok": check.ok,
                "check": check.reason,
            }

        out = _in_child_as_nobody(as_nobody)
    assert "error" not in out, out
    assert not out["ok"] and "EACCES" in out["reason"] and "root" in out["reason"]
    assert "energy_uj" in out["reason"]
    # the console still works: it estimates, and says why
    assert out["source_ok"] and out["mode"] == "estimate" and "EACCES" in out["source_reason"]
    assert not out["check_ok"] and "EACCES" in out["check"] and "run as root" in out["check"]


def test_held_descriptors_keep_reading_after_root_is_dropped(world_readable_dir):
    root = world_readable_dir
    with FakeRapl(root, [FakeZone("intel-rapl:0", "package-0", 20.0)]):
        (root / "intel-rapl:0").chmod(0o755)
        reader = PowercapReader(str(root))
        assert reader.open().ok  # as root, as obs-tui does at start-up

        def as_nobody():
            first = reader.read()[0]
            time.sleep(0.5)
            return {"first": first, "second": reader.read()[0], "reopen": PowercapReader(str(root)).open().ok}

        out = _in_child_as_nobody(as_nobody)
        reader.close()
    assert "error" not in out, out
    assert not out["reopen"]  # nobody cannot open the file ...
    assert out["second"] - out["first"] > 5_000_000  # ... but reads it through the held fd


def test_open_meter_prefers_powercap_and_names_hwmon_too(tmp_path):
    meter, why = open_meter(str(tmp_path / "a"), str(tmp_path / "b"))
    assert meter is None and "no RAPL zones" in why and "amd_energy" in why
    assert not HwmonEnergyReader(str(tmp_path)).open().ok


def test_snapshot_window_counts_a_counter_that_wraps_within_it(tmp_path):
    """`snapshot --duration 4.5` on an 18 J counter at 10 W (it wraps every 1.8 s): read at the
    1 s interval through the window, every wrap is seen and the window holds 45 J. Read only
    at the window's two ends (or with the half-range rule, which calls a 10 J step on an 18 J
    counter a reset) it would not: a missed wrap is 18 J of the 45."""
    tree = tmp_path / "powercap"
    conf = tmp_path / "config.toml"
    conf.write_text(
        f'interval = 1.0\n[power]\npowercap_root = "{tree}"\nhwmon_root = "{tmp_path / "no-hwmon"}"\n'
    )
    zones = [FakeZone("intel-rapl:0", "package-0", 10.0, max_uj=18_000_000, start_uj=0)]
    with FakeRapl(tree, zones):
        result = servers.run_obs_tui(
            "--config", str(conf), "snapshot", "--json", "--duration", "4.5", timeout=90
        )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    power = doc["power"]
    assert doc["capabilities"]["rapl"]["ok"] and power["source"] == "rapl"
    assert 4.5 <= doc["duration_s"] < 5.5
    # energy is read once a second: the window's energy covers the readings inside it, which
    # span all of it but the part before its first reading (under a second)
    assert doc["duration_s"] - 1.0 <= power["window_s"] <= doc["duration_s"] + 0.05
    assert near(power["host_joules"], 10.0 * power["window_s"], 0.03), (power, doc["duration_s"])
    assert near(power["host_watts"], 10.0, 0.03) and near(power["zones"]["package-0"], 10.0, 0.03)
    attributed = sum(p["watts"] for p in power["processes"]) + power["idle_watts"]
    assert attributed == pytest.approx(power["host_watts"], rel=0.005)


def test_a_counter_reset_counts_only_the_energy_since_it(tmp_path):
    """A driver reload puts a 262 kJ counter at 200 kJ back to 0 mid-run: read through the real
    reader, the tick with the reset holds the few joules since it, not the ~62 kJ a wrap would
    mean (62 kW for that second; the old half-range rule took it for a wrap)."""
    zone = FakeZone("intel-rapl:0", "package-0", 10.0, start_uj=200_000_000_000)
    with FakeRapl(tmp_path, [zone]) as fake:
        source = PowerSource(str(tmp_path), str(tmp_path / "no-hwmon"), use_ebpf=False)
        assert source.available().ok
        try:
            with fake.held() as t0:
                r0 = source.sample(0.0)
            time.sleep(0.5)
            with fake._lock:  # the reload: from now on the counter runs from 0
                zone.start_uj = -round(zone.watts * (time.monotonic() - fake._t0) * 1e6)
                reset_at = time.monotonic()
            time.sleep(0.5)
            with fake.held() as t1:
                r1 = source.sample(0.0)
        finally:
            source.close()
    s = power_section(r0, r1, t1 - t0)
    assert near(s.host_joules, 10.0 * (t1 - reset_at), 0.05), (s.host_joules, t1 - reset_at)
