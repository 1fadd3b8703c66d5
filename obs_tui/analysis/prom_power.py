"""Host and process power from Prometheus (read-only mode): Kepler, Scaphandre or obs-tui.

Each family is one PromQL query whose series are told apart by an `obs_kind` label
("zone": a host figure by zone, "process", "container"), all in watts. The analysis picks the
selected instance (or adds up all of them) and returns the PowerSection the local power
source fills, with these differences: idle is what the listed processes did not take (idle
power, and processes the exporter left out), no CPU seconds, and joules are watts x the frame's window, not totals since start (the
history is Prometheus's). A row without a
usable pid (a container, a process of another host when all instances are shown) gets a
stable negative id from its name, which the pane shows as no pid.
"""

from __future__ import annotations

import zlib

from obs_tui.model import PowerSection, ProcessPower
from obs_tui.raw import ALL, PromPowerRaw


def _host_watts(zones: dict[str, float]) -> float:
    """The host figure: an explicit total (obs-tui's "host", Scaphandre's host), else psys
    (the platform, which contains package and dram), else the sum of the zones."""
    for total in ("host", "psys", "platform"):
        if total in zones:
            return zones[total]
    return sum(zones.values())


def _row_id(name: str) -> int:
    return -1 - (zlib.crc32(name.encode()) & 0x3FFFFFFF)


def prom_power_section(prev: PromPowerRaw | None, cur: PromPowerRaw, dt: float) -> PowerSection:
    sample, instance = cur.latest, cur.instance
    many = instance == ALL and len(sample.instances()) > 1
    zones: dict[str, float] = {}
    procs: dict[tuple[str, str, int], tuple[int, float]] = {}  # (name, where, pid) -> (pid, watts)
    for inst, kind, labels, watts in sample.rows:
        if instance != ALL and inst != instance:
            continue
        named = dict(labels)
        if kind == "zone":
            zone = named.get("zone", "host")
            zones[zone] = zones.get(zone, 0.0) + watts
        elif kind in ("process", "container"):
            name = named.get("comm") or named.get("exe") or named.get("container_name") or "?"
            if kind == "container":
                name = f"container:{name}"
            try:
                pid = int(named.get("pid", "0"))
            except ValueError:
                pid = 0
            key = (name, inst if many else "", pid if not many else 0)
            have = procs.get(key, (pid, 0.0))
            procs[key] = (have[0], have[1] + watts)
    attributed = sum(watts for _, watts in procs.values())
    host = _host_watts(zones) if zones else attributed
    processes = []
    for (name, where, _), (pid, watts) in sorted(procs.items(), key=lambda kv: -kv[1][1]):
        # Across hosts a pid names nothing: the row is the name on its host, without a pid.
        shown = f"{name}@{where}" if where else name
        processes.append(
            ProcessPower(
                pid if pid > 0 and not many else _row_id(shown),
                shown,
                0.0,
                round(watts, 3),
                round(watts * dt, 3),
                round(watts / host, 4) if host > 0 else 0.0,
            )
        )
    idle = max(host - attributed, 0.0)  # what no listed process took (idle, and the unlisted)
    return PowerSection(
        source=sample.family,
        host_watts=round(host, 3),
        idle_watts=round(idle, 3),
        host_joules=host * dt,
        idle_joules=idle * dt,
        # "host" is obs-tui's and Scaphandre's total, not a part of it
        zones=tuple(sorted((z, round(w, 3)) for z, w in zones.items() if z != "host")),
        processes=tuple(processes),
        reason=f"from Prometheus ({sample.family}, {'all instances' if instance == ALL else instance})",
    )
