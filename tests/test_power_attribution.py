"""Attribution: the pure maths on hand-made samples, then real CPU burners at 3:1 through the
real engine, a fake RAPL tree at a known wattage, and both CPU-time sources."""

from __future__ import annotations

import time

import pytest

from obs_tui.analysis.attribution import (
    MAX_PLAUSIBLE_WATTS,
    busy_ratio,
    carry_totals,
    counter_delta,
    fold_window,
    power_section,
)
from obs_tui.engine import Engine
from obs_tui.pipeline import stages
from obs_tui.raw import CpuStat, PowerRaw, Zone
from obs_tui.sources.power import PowerSource, parse_proc_stat
from tests.power_fakes import FakeRapl, FakeZone, spawn_burner, stop

PKG = Zone("package-0", "package", 0, 1_000_000_000)
DRAM = Zone("dram-0", "dram", 0, 1_000_000_000)
CORE = Zone("core-0", "core", 0, 1_000_000_000)


def raw(counters, busy, total, cpu_ns, zones=(PKG, DRAM, CORE)):
    return PowerRaw(
        "rapl",
        zones,
        tuple(counters),
        CpuStat(busy, total),
        dict(cpu_ns),
        {pid: f"p{pid}" for pid in cpu_ns},
        "ebpf",
    )


def conserved(section) -> bool:
    total = sum(p.watts for p in section.processes) + section.idle_watts
    return abs(total - section.host_watts) <= 0.005 * section.host_watts


def test_counter_delta_plain_and_wrapped():
    assert counter_delta(100, 350, 1000, 1.0) == 250
    assert counter_delta(900, 50, 1000, 1.0) == 100 + 50 + 1  # 900..1000, wrap to 0, 0..50
    assert counter_delta(5, 5, 1000, 1.0) == 0


def test_a_counter_reset_is_not_read_as_a_huge_wrap():
    # amd_energy's 64-bit counter went from 9 J back to 2 J: a reload, not 18 EJ of energy
    assert counter_delta(9_000_000, 2_000_000, 2**64 - 1, 1.0) == 2_000_000


def test_wrap_or_reset_is_decided_by_the_power_it_would_mean():
    """A 262 kJ package counter read 1 s apart: a backwards step is a wrap when the energy
    it implies is plausible for that second, a reset when it is not."""
    top = 262_143_328_850
    # 1.2 kJ below the top, then 0.3 kJ past 0: 1.5 kJ in 1 s, 1.5 kW: a wrap
    assert counter_delta(top - 1_200_000_000, 300_000_000, top, 1.0) == 1_500_000_001
    # the same readings 0.5 s apart would mean 3 kW: a reset, 0.3 kJ since
    assert counter_delta(top - 1_200_000_000, 300_000_000, top, 0.5) == 300_000_000
    # from the middle of the range back to 5 J: 131 kJ in 1 s is no wrap
    assert counter_delta(top // 2, 5_000_000, top, 1.0) == 5_000_000
    # ... but over 15 minutes it is one (146 W): a window read only at its two ends
    assert counter_delta(top // 2, 5_000_000, top, 900.0) == top - top // 2 + 5_000_001
    # a small counter (a fake tree's 15 J range) wrapping at 10 W in a 1 s tick: most of its
    # range in one reading, still a wrap (the old half-range rule called this a reset)
    assert counter_delta(9_000_000, 4_000_000, 15_000_000, 1.0) == 10_000_001
    # no time passed: any backwards step is a reset
    assert counter_delta(900, 50, 1000, 0.0) == 50
    assert MAX_PLAUSIBLE_WATTS == 2000.0


def test_busy_ratio_from_proc_stat_lines():
    a = parse_proc_stat("cpu  100 0 50 800 10 5 5 0 0 0\ncpu0 1 2 3 4\n")
    b = parse_proc_stat("cpu  400 0 150 1000 10 25 25 0 0 0\n")
    assert a == CpuStat(160, 970)
    assert busy_ratio(a, b) == pytest.approx(440 / 640)


def test_kepler_split_by_hand():
    # 2 s; package 40 J, dram 10 J (core 20 J is inside the package); node 60 % busy.
    # Processes ran 3 s and 1 s of CPU. Active = 50 J x 0.6 = 30 J: 22.5 J and 7.5 J.
    before = raw([0, 0, 0], 0, 1000, {1: 0, 2: 0, 3: 5})
    after = raw([40_000_000, 10_000_000, 20_000_000], 600, 2000, {1: 3_000_000_000, 2: 1_000_000_000, 3: 5})
    s = power_section(before, after, 2.0)
    assert s.host_watts == pytest.approx(25.0)
    assert dict(s.zones) == pytest.approx({"package-0": 20.0, "dram-0": 5.0})
    assert dict(s.subzones) == pytest.approx({"core-0": 10.0})
    w = {p.pid: p.watts for p in s.processes}
    assert w[1] == pytest.approx(11.25) and w[2] == pytest.approx(3.75) and w[3] == 0.0
    assert s.idle_watts == pytest.approx(10.0)  # 50 J x 0.4 / 2 s
    assert {p.pid: p.share for p in s.processes}[1] == pytest.approx(0.45)
    assert conserved(s)


def test_no_process_ran_means_it_is_all_idle():
    s = power_section(raw([0, 0, 0], 0, 100, {1: 7}), raw([5_000_000, 0, 0], 50, 200, {1: 7}), 1.0)
    assert s.host_watts == pytest.approx(5.0) and s.idle_watts == pytest.approx(5.0)
    assert conserved(s)


def test_first_tick_names_zones_with_zero_watts():
    s = power_section(None, raw([1, 2, 3], 0, 10, {1: 1}), 0.0)
    assert s.host_watts == 0.0 and [n for n, _ in s.zones] == ["package-0", "dram-0"]


def test_totals_since_start_accumulate_and_drop_processes_that_never_ran():
    r0 = raw([0, 0, 0], 0, 100, {1: 0, 2: 0})
    r1 = raw([10_000_000, 0, 0], 100, 200, {1: 1_000_000_000, 2: 0})
    r2 = raw([20_000_000, 0, 0], 200, 300, {1: 2_000_000_000, 2: 0})
    s1 = carry_totals(None, power_section(r0, r1, 1.0))
    s2 = carry_totals(s1, power_section(r1, r2, 1.0))
    (p,) = s2.processes  # pid 2 never ran
    assert p.pid == 1 and p.joules == pytest.approx(20.0) and p.cpu_seconds == pytest.approx(2.0)
    assert s2.host_joules == pytest.approx(20.0)


def test_a_window_folds_its_ticks_into_totals_and_window_averages():
    """Three ticks of 1, 2 and 1 s: 10 W, then 12.5 W on a counter that wraps, then 5 W; pid 2
    runs only in the first tick and exits. The window: 40 J over 4 s, 10 W, the processes'
    joules summed (the exited one too) and their watts over the whole window."""
    small = Zone("package-0", "package", 0, 30_000_000)  # a 30 J range
    ticks = [
        raw([0], 0, 100, {1: 0, 2: 0}, zones=(small,)),
        raw([10_000_000], 100, 200, {1: 500_000_000, 2: 500_000_000}, zones=(small,)),
        raw([4_999_999], 300, 400, {1: 2_500_000_000}, zones=(small,)),  # wrapped: +25 J
        raw([9_999_999], 400, 500, {1: 3_000_000_000}, zones=(small,)),
    ]
    window, covered = None, 0.0
    for prev, cur, dt in zip(ticks, ticks[1:], (1.0, 2.0, 1.0)):
        window = fold_window(window, power_section(prev, cur, dt), covered, dt)
        covered += dt
    assert window.host_joules == pytest.approx(40.0)
    assert window.host_watts == pytest.approx(window.host_joules / 4.0)
    assert dict(window.zones)["package-0"] == pytest.approx(window.host_watts)
    assert window.busy_ratio == pytest.approx(1.0)
    by_pid = {p.pid: p for p in window.processes}
    assert by_pid[1].cpu_seconds == pytest.approx(3.0) and by_pid[2].cpu_seconds == pytest.approx(0.5)
    assert by_pid[2].joules == pytest.approx(5.0) and by_pid[2].watts == pytest.approx(5.0 / 4.0)
    assert by_pid[1].joules == pytest.approx(window.host_joules - 5.0)
    assert conserved(window)
    assert sum(p.share for p in window.processes) == pytest.approx(1.0)


def test_a_pid_reused_between_ticks_starts_again():
    s = power_section(
        raw([0, 0, 0], 0, 100, {1: 9_000_000_000}), raw([1_000_000, 0, 0], 100, 200, {1: 500_000_000}), 1.0
    )
    assert s.processes[0].cpu_seconds == pytest.approx(0.5)  # the new process's own time


# ---- real processes ---------------------------------------------------------------------


@pytest.fixture
def burners():
    procs = spawn_burner(0.6), spawn_burner(0.2)
    yield procs
    stop(*procs)


@pytest.mark.parametrize("use_ebpf", [True, False], ids=["ebpf", "proc"])
def test_two_burners_at_3_to_1_get_watts_at_3_to_1(tmp_path, burners, use_ebpf):
    heavy, light = burners
    with FakeRapl(tmp_path, [FakeZone("intel-rapl:0", "package-0", 80.0)]):
        source = PowerSource(str(tmp_path), str(tmp_path), use_ebpf=use_ebpf)
        engine = Engine(stages([source]), interval=1.0)
        try:
            assert source.cputime.kind == ("ebpf" if use_ebpf else "proc"), source.reason
            engine.tick()
            time.sleep(1.0)  # let the burners settle into their pace
            engine.tick()
            time.sleep(4.0)
            frame = engine.tick()
        finally:
            engine.close()
    s = frame.power
    w = {p.pid: p.watts for p in s.processes}
    assert w[heavy.pid] > 0 and w[light.pid] > 0
    ratio = w[heavy.pid] / w[light.pid]
    assert 2.7 <= ratio <= 3.3, (ratio, w[heavy.pid], w[light.pid])
    assert abs(s.host_watts - 80.0) <= 0.8
    assert conserved(s)
    assert s.cpu_time_source == ("ebpf" if use_ebpf else "proc")
    joules = {p.pid: p.joules for p in s.processes}
    assert joules[heavy.pid] > w[heavy.pid] * 4.0  # since start: both windows


def test_every_tick_conserves_on_the_real_host_with_the_estimate(tmp_path, burners):
    source = PowerSource(str(tmp_path), str(tmp_path), use_ebpf=True)
    engine = Engine(stages([source]), interval=0.3)
    try:
        frames = []
        for _ in range(10):
            frames.append(engine.tick())
            time.sleep(0.3)
    finally:
        engine.close()
    windows = [f for f in frames if f.power.window_s]  # energy is read once a second at most
    assert len(windows) >= 5
    for f in windows:
        assert f.power.source == "estimate" and f.power.host_watts > 0
        assert conserved(f.power), f.power


def test_busy_ratio_from_ebpf_on_cpu_time_when_proc_stat_shows_no_tick():
    """A lightly loaded host: 50 ms of on-CPU time over 2 s on 2 CPUs is 1.25 % busy, where
    /proc/stat's 10 ms ticks may show none at all (every process then got 0 W)."""
    from dataclasses import replace

    before = replace(raw([0, 0, 0], 100, 1000, {7: 0}), cpus=2)
    after = replace(raw([20_000_000, 0, 0], 100, 1400, {7: 50_000_000}), cpus=2)
    s = power_section(before, after, 2.0)
    assert s.busy_ratio == pytest.approx(0.0125)
    seven = next(p for p in s.processes if p.pid == 7)
    assert seven.watts == pytest.approx(10.0 * 0.0125) and conserved(s)


def test_zone_joules_add_up_to_the_host_joules_from_the_first_tick():
    """Every host zone has an energy total from the first tick on (0 J), and the zones' totals
    add up to the host's: the exporter publishes the two as separate counters."""
    r0 = raw([0, 0, 0], 0, 100, {1: 0})
    r1 = raw([10_000_000, 4_000_000, 6_000_000], 100, 200, {1: 1_000_000_000})
    r2 = raw([30_000_000, 5_000_000, 9_000_000], 200, 300, {1: 2_000_000_000})
    s0 = carry_totals(None, power_section(None, r0, 0.0))
    assert dict(s0.zone_joules) == {"package-0": 0.0, "dram-0": 0.0}  # core-0 is inside package
    s1 = carry_totals(s0, power_section(r0, r1, 1.0))
    s2 = carry_totals(s1, power_section(r1, r2, 1.0))
    assert dict(s2.zone_joules) == pytest.approx({"package-0": 30.0, "dram-0": 5.0})
    assert sum(j for _, j in s2.zone_joules) == pytest.approx(s2.host_joules)
