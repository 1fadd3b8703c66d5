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

from dataclasses import dataclass, replace

from obs_tui.analysis.estimate import estimated_watts
from obs_tui.model import PowerEstimate, PowerSection, ProcessPower

HOST_KINDS_WITHOUT_PSYS = ("package", "dram")


@dataclass(frozen=True)
class Zone:
    """One energy counter: display name, what it measures, where it wraps (0..max_uj)."""

    name: str
    kind: str  # "package", "core", "uncore", "dram", "psys"
    socket: int | None
    max_uj: int
    path: str = ""


@dataclass(frozen=True)
class CpuStat:
    """The aggregate "cpu" line of /proc/stat, in clock ticks over all CPUs."""

    busy: int
    total: int


@dataclass(frozen=True)
class PowerRaw:
    source: str  # "rapl" | "estimate"
    zones: tuple[Zone, ...]  # RAPL zones, () for an estimate
    counters: tuple[int, ...]  # microjoules, one per zone
    stat: CpuStat
    cpu_ns: dict[int, int]  # tgid -> on-CPU nanoseconds, cumulative
    comms: dict[int, str]
    cpu_time_source: str  # "ebpf" | "proc"
    estimate: PowerEstimate | None = None
    reason: str = ""
    cpus: int = 0  # online CPUs, for the busy ratio from eBPF on-CPU time (0: unknown)


def counter_delta(before: int, after: int, max_uj: int) -> int:
    """Microjoules between two readings of a counter that runs 0..max_uj and wraps to 0.

    A wrapped reading (after < before) is the energy up to the top plus the energy from 0:
    never negative, never dropped. One wrap per tick at most: a package counter's range
    (~262 kJ) takes minutes to wrap even at hundreds of watts. A backwards step that would
    mean more than half the range in one tick is no wrap but a reset (driver reloaded; the
    64-bit amd_energy counters never wrap): then the energy since the reset is what we know.
    """
    if after >= before:
        return after - before
    wrapped = (max_uj - before) + after + 1
    return wrapped if 0 < wrapped <= max_uj // 2 else after


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


def zone_energy(prev: PowerRaw | None, cur: PowerRaw, dt: float,
                u: float) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(host parts, breakdown) as (name, joules over the tick); zeros without a previous raw."""
    if cur.source == "estimate":
        cpu_w, memory_w = estimated_watts(cur.estimate, u) if cur.estimate else (0.0, 0.0)
        return [("cpu", cpu_w * dt), ("memory", memory_w * dt)], []
    if prev is None:
        joules = [0.0] * len(cur.zones)
    else:
        joules = [counter_delta(a, b, z.max_uj) / 1e6
                  for a, b, z in zip(prev.counters, cur.counters, cur.zones)]
    host, breakdown = host_zones(cur.zones)
    return ([(cur.zones[i].name, joules[i]) for i in host],
            [(cur.zones[i].name, joules[i]) for i in breakdown])


def cpu_deltas(prev: dict[int, int], cur: dict[int, int]) -> dict[int, int]:
    """On-CPU ns per tgid over the tick. A tgid new to `cur` started inside the tick; one whose
    counter went down is a reused pid (the /proc fallback), whose whole counter is new."""
    out = {}
    for tgid, ns in cur.items():
        before = prev.get(tgid, 0)
        out[tgid] = ns - before if ns >= before else ns
    return out


def power_section(prev: PowerRaw | None, cur: PowerRaw, dt: float) -> PowerSection:
    """This tick's split. Joules and CPU seconds are for this tick; `carry_totals` turns them
    into totals since start. Every tgid of `cur` has a row (idle ones at 0 W)."""
    if prev is not None and not (dt > 0 and prev.source == cur.source and prev.zones == cur.zones):
        prev = None  # nothing to compare with: this tick only names the zones and processes
    if prev is None:
        parts, breakdown = zone_energy(None, cur, 0.0, 0.0)
        return PowerSection(
            cur.source, 0.0, 0.0, tuple(parts),
            tuple(ProcessPower(pid, cur.comms.get(pid, "?"), 0.0, 0.0, 0.0) for pid in cur.cpu_ns),
            subzones=tuple(breakdown), cpu_time_source=cur.cpu_time_source,
            estimate=cur.estimate, reason=cur.reason, zone_joules=tuple(parts))
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
        processes.append(ProcessPower(tgid, cur.comms.get(tgid, "?"), ns / 1e9, watts, joules,
                                      watts / host_w if host_w > 0 else 0.0))
    # Idle is what no process took: the idle share of every zone, plus the active share when
    # no process ran at all (so the books always balance).
    idle_j = host_j - attributed
    return PowerSection(
        source=cur.source, host_watts=host_w, idle_watts=idle_j / dt,
        zones=tuple((name, j / dt) for name, j in parts),
        processes=tuple(processes),
        subzones=tuple((name, j / dt) for name, j in breakdown),
        busy_ratio=u, host_joules=host_j, idle_joules=idle_j, zone_joules=tuple(parts),
        cpu_time_source=cur.cpu_time_source, estimate=cur.estimate, reason=cur.reason)


def carry_totals(prev: PowerSection | None, cur: PowerSection) -> PowerSection:
    """Turn a tick's joules and CPU seconds into totals since start, adding the previous
    section's; processes that have used nothing since start are left out."""
    before = {} if prev is None else {(p.pid, p.comm): p for p in prev.processes}
    processes = []
    for p in cur.processes:
        b = before.get((p.pid, p.comm))
        if b is not None:
            p = replace(p, cpu_seconds=b.cpu_seconds + p.cpu_seconds, joules=b.joules + p.joules)
        if p.joules > 0 or p.cpu_seconds > 0:
            processes.append(p)
    processes.sort(key=lambda p: (-p.watts, -p.joules, p.pid))
    if prev is None:
        return replace(cur, processes=tuple(processes))
    zone_joules = dict(prev.zone_joules)
    for zone, joules in cur.zone_joules:
        zone_joules[zone] = zone_joules.get(zone, 0.0) + joules
    return replace(cur, processes=tuple(processes), host_joules=prev.host_joules + cur.host_joules,
                   idle_joules=prev.idle_joules + cur.idle_joules,
                   zone_joules=tuple(sorted(zone_joules.items())))
