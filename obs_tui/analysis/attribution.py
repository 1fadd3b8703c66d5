"""Host energy split over processes, the way Kepler does it today.

Per zone and per tick:
    energy  dE = counter delta (RAPL) or estimated watts x dt (no RAPL)
    active     = dE x node busy ratio          (busy / all CPU time, from /proc/stat)
    idle       = dE - active
    process p  gets active x (its on-CPU time delta / all processes' on-CPU time delta)
Idle is a row of its own. Conservation: the processes plus idle are the host, every tick.

Which zones make the host (none counted twice, as Scaphandre does it): psys when present (the
whole platform: packages, DRAM and more); otherwise every package-N plus every dram-N (DRAM
is not inside the package on Intel). core-N and uncore-N sit inside their package: they are
breakdown rows, as are the packages and DRAM under psys.
"""

from __future__ import annotations

from dataclasses import replace

from obs_tui.analysis.estimate import estimated_watts
from obs_tui.model import PowerSection, ProcessPower
from obs_tui.raw import CpuStat, PowerRaw, Zone

HOST_KINDS_WITHOUT_PSYS = ("package", "dram")


# More than any one RAPL counter reports: server packages are rated up to about 500 W and
# draw somewhat more in bursts; psys (the whole platform) stays within a few hundred watts on
# the machines that have it. A backwards step worth more than this over the time since the
# last reading cannot be a wrap; a smaller one cannot be told from a reset just after a wrap
# would have happened, and is read as a wrap.
MAX_PLAUSIBLE_WATTS = 2000.0


def counter_delta(before: int, after: int, max_uj: int, elapsed_s: float) -> int:
    """Microjoules between two readings, `elapsed_s` apart, of a counter that runs 0..max_uj
    and wraps to 0.

    A backwards step (after < before) is a wrap when the energy up to the top plus the energy
    from 0 is plausible for the time that passed (at most MAX_PLAUSIBLE_WATTS); otherwise it
    is a reset (driver reloaded; the 64-bit amd_energy counters never wrap), and the energy
    since the reset is what we know. One wrap per reading at most: the readings must come
    more often than the counter wraps (a 300 W package wraps its ~262 kJ in about 15 minutes),
    which is why a window is read at every interval and the interval is bounded (config.py).
    """
    if after >= before:
        return after - before
    wrapped = (max_uj - before) + after + 1
    return wrapped if wrapped <= MAX_PLAUSIBLE_WATTS * max(elapsed_s, 0.0) * 1e6 else after


def busy_ratio(before: CpuStat, after: CpuStat) -> float:
    total = after.total - before.total
    if total <= 0:
        return 0.0
    return min(max((after.busy - before.busy) / total, 0.0), 1.0)


def host_zones(zones: tuple[Zone, ...]) -> tuple[list[int], list[int]]:
    """(indices summed into the host, indices shown as breakdown)."""
    if any(z.kind == "psys" for z in zones):
        host = [i for i, z in enumerate(zones) if z.kind == "psys"]
    else:
        host = [i for i, z in enumerate(zones) if z.kind in HOST_KINDS_WITHOUT_PSYS]
    return host, [i for i in range(len(zones)) if i not in host]


def zone_energy(
    prev: PowerRaw | None, cur: PowerRaw, dt: float, u: float
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(host parts, breakdown) as (name, joules over the tick); zeros without a previous raw."""
    if cur.source == "estimate":
        cpu_w, memory_w = estimated_watts(cur.estimate, u) if cur.estimate else (0.0, 0.0)
        return [("cpu", cpu_w * dt), ("memory", memory_w * dt)], []
    if prev is None:
        joules = [0.0] * len(cur.zones)
    else:
        joules = [
            counter_delta(a, b, z.max_uj, dt) / 1e6 for a, b, z in zip(prev.counters, cur.counters, cur.zones)
        ]
    host, breakdown = host_zones(cur.zones)
    return (
        [(cur.zones[i].name, joules[i]) for i in host],
        [(cur.zones[i].name, joules[i]) for i in breakdown],
    )


def cpu_deltas(prev: dict[int, int], cur: dict[int, int]) -> dict[int, int]:
    """On-CPU ns per tgid over the tick. A tgid new to `cur` started inside the tick; one whose
    counter went down is a reused pid (the /proc fallback), whose whole counter is new."""
    out = {}
    for tgid, ns in cur.items():
        before = prev.get(tgid, 0)
        out[tgid] = ns - before if ns >= before else ns
    return out


def power_section(prev: PowerRaw | None, cur: PowerRaw, dt: float) -> PowerSection | None:
    """This tick's split. Joules and CPU seconds are for this tick; `carry_totals` turns them
    into totals since start. Every tgid of `cur` has a row (idle ones at 0 W).

    None when `cur` is `prev` itself: the source kept its last reading (it reads energy at most
    once a second, see sources/power.py), so there is no new window and the section stays.
    The window is the time between the two readings when they carry it."""
    if cur is prev:
        return None
    if prev is not None and prev.at and cur.at:
        dt = cur.at - prev.at
    if prev is not None and not (dt > 0 and prev.source == cur.source and prev.zones == cur.zones):
        prev = None  # nothing to compare with: this tick only names the zones and processes
    if prev is None:
        parts, breakdown = zone_energy(None, cur, 0.0, 0.0)
        return PowerSection(
            cur.source,
            0.0,
            0.0,
            tuple(parts),
            tuple(ProcessPower(pid, cur.comms.get(pid, "?"), 0.0, 0.0, 0.0) for pid in cur.cpu_ns),
            subzones=tuple(breakdown),
            cpu_time_source=cur.cpu_time_source,
            estimate=cur.estimate,
            reason=cur.reason,
            zone_joules=tuple(parts),
        )
    deltas = cpu_deltas(prev.cpu_ns, cur.cpu_ns)
    all_ns = sum(deltas.values())
    if cur.cpu_time_source == "ebpf" and cur.cpus > 0:
        # On-CPU nanoseconds of every task over the CPUs' time: /proc/stat counts 10 ms ticks,
        # and a lightly loaded host shows 0 or 1 busy tick in a 2 s window (every process then
        # got 0 W). Kepler's ratio, at the probe's resolution.
        u = min(all_ns / (dt * 1e9 * cur.cpus), 1.0)
    else:
        u = busy_ratio(prev.stat, cur.stat)
    parts, breakdown = zone_energy(prev, cur, dt, u)
    host_j = sum(j for _, j in parts)
    active_j = sum(j * u for _, j in parts)  # per zone, as Kepler: each zone's dE x busy ratio
    host_w = host_j / dt
    processes = []
    attributed = 0.0
    for tgid, ns in deltas.items():
        joules = active_j * ns / all_ns if all_ns > 0 else 0.0
        attributed += joules
        watts = joules / dt
        processes.append(
            ProcessPower(
                tgid, cur.comms.get(tgid, "?"), ns / 1e9, watts, joules, watts / host_w if host_w > 0 else 0.0
            )
        )
    # Idle is what no process took: the idle share of every zone, plus the active share when
    # no process ran at all (so the books always balance).
    idle_j = max(host_j - attributed, 0.0)  # never -1e-15 W from float rounding
    return PowerSection(
        source=cur.source,
        host_watts=host_w,
        idle_watts=idle_j / dt,
        zones=tuple((name, j / dt) for name, j in parts),
        processes=tuple(processes),
        subzones=tuple((name, j / dt) for name, j in breakdown),
        busy_ratio=u,
        host_joules=host_j,
        idle_joules=idle_j,
        zone_joules=tuple(parts),
        cpu_time_source=cur.cpu_time_source,
        estimate=cur.estimate,
        reason=cur.reason,
        window_s=dt,
    )


def _added(
    before: tuple[ProcessPower, ...], step: tuple[ProcessPower, ...], keep_gone: bool
) -> list[ProcessPower]:
    """Each process's CPU seconds and joules, `before`'s plus `step`'s (by pid and name); with
    keep_gone, also those that ran before and are not in `step` (exited). Processes that have
    used nothing are left out."""
    prior = {(p.pid, p.comm): p for p in before}
    out = []
    for p in step:
        b = prior.pop((p.pid, p.comm), None)
        if b is not None:
            p = replace(p, cpu_seconds=b.cpu_seconds + p.cpu_seconds, joules=b.joules + p.joules)
        out.append(p)
    if keep_gone:
        out.extend(replace(p, watts=0.0, share=0.0) for p in prior.values())
    return [p for p in out if p.joules > 0 or p.cpu_seconds > 0]


def _by_power(processes: list[ProcessPower]) -> tuple[ProcessPower, ...]:
    return tuple(sorted(processes, key=lambda p: (-p.watts, -p.joules, p.pid)))


def carry_totals(prev: PowerSection | None, cur: PowerSection | None) -> PowerSection | None:
    """Turn a tick's joules and CPU seconds into totals since start, adding the previous
    section's; processes that have used nothing since start are left out. No new window
    (cur None): the previous section, unchanged."""
    if cur is None:
        return prev
    processes = _by_power(_added(prev.processes if prev else (), cur.processes, keep_gone=False))
    if prev is None:
        return replace(cur, processes=processes)
    return replace(
        cur,
        processes=processes,
        host_joules=prev.host_joules + cur.host_joules,
        idle_joules=prev.idle_joules + cur.idle_joules,
        zone_joules=_summed(prev.zone_joules, cur.zone_joules),
    )


def _summed(
    a: tuple[tuple[str, float], ...], b: tuple[tuple[str, float], ...]
) -> tuple[tuple[str, float], ...]:
    """Per-zone joules of `a` plus those of `b`, by zone name."""
    total = dict(a)
    for zone, joules in b:
        total[zone] = total.get(zone, 0.0) + joules
    return tuple(sorted(total.items()))


def fold_window(
    window: PowerSection | None, step: PowerSection | None, window_s: float, step_s: float
) -> PowerSection | None:
    """A window (`window_s` seconds so far, None before its first step) followed by one more
    tick's section (`step_s` seconds): the section over both, for `snapshot --duration`.

    Energy is read at most once a second (sources/power.py): a tick with no new reading has no
    section (None) and leaves the window as it is, and a reading's own `window_s`, the time
    since the reading before it, is the step's length, not the tick's. So the window's length
    is the sum of its readings' windows, and its watts are its joules over that length.

    Energies and CPU seconds are totals over the window, including processes that exited in
    it; watts are the window's averages. Summing ticks, not comparing the counters at the
    window's two ends, is what keeps a counter that wraps within the window counted."""
    if step is None:
        return window
    if step.window_s > 0:
        step_s = step.window_s
    window_s = window.window_s if window is not None else 0.0
    total_s = window_s + step_s
    if total_s <= 0:
        return step

    def averaged(
        before: tuple[tuple[str, float], ...], now: tuple[tuple[str, float], ...]
    ) -> tuple[tuple[str, float], ...]:
        joules = {name: watts * window_s for name, watts in before}
        for name, watts in now:
            joules[name] = joules.get(name, 0.0) + watts * step_s
        return tuple((name, j / total_s) for name, j in joules.items())

    host_j = (window.host_joules if window else 0.0) + step.host_joules
    idle_j = (window.idle_joules if window else 0.0) + step.idle_joules
    host_w = host_j / total_s
    processes = [
        replace(p, watts=p.joules / total_s, share=p.joules / host_j if host_j > 0 else 0.0)
        for p in _added(window.processes if window else (), step.processes, keep_gone=True)
    ]
    busy = ((window.busy_ratio * window_s if window else 0.0) + step.busy_ratio * step_s) / total_s
    return replace(
        step,
        host_watts=host_w,
        idle_watts=idle_j / total_s,
        zones=averaged(window.zones if window else (), step.zones),
        subzones=averaged(window.subzones if window else (), step.subzones),
        processes=_by_power(processes),
        busy_ratio=busy,
        host_joules=host_j,
        idle_joules=idle_j,
        zone_joules=_summed(window.zone_joules if window else (), step.zone_joules),
        window_s=total_s,
    )
