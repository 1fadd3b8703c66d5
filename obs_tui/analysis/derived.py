"""The numbers read across a Frame's sections, once its sections are in.

Each section comes from its own analysis; what is read across them (every service together,
the processes joined with their power, the series as /metrics labels them) is computed here,
once, so the console, `snapshot`, the exporter and replayed history show the same numbers.
The engine derives every Frame it makes; the reader of recorded frames (history/document.py)
derives the frames it reads, since the snapshot document holds only what these are read from
(and red.totals, which history written before that field existed lacks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from obs_tui.model import (
    Frame,
    HttpSeries,
    PowerSection,
    ProcessPower,
    ProcessRow,
    ProcessSample,
    RedSection,
    RedTotals,
    ServiceStats,
    UndecodedCount,
)
from obs_tui.raw import UNPARSED_METHOD

SeriesKey = tuple[str, str, str, str, str, int]


def red_totals(services: Sequence[ServiceStats]) -> RedTotals:
    """Every service together: rates add up; the error ratio is over all their requests."""
    requests = sum(s.requests for s in services)
    errors = sum(s.errors for s in services)
    return RedTotals(
        services=len(services),
        rps=sum(s.rps for s in services),
        requests=requests,
        errors=errors,
        error_ratio=errors / requests if requests else 0.0,
    )


def process_rows(processes: Sequence[ProcessSample], power: PowerSection | None) -> tuple[ProcessRow, ...]:
    """Every process the procs source saw, with its power; then the processes that used power
    and have exited since (eBPF saw them), in the power section's order."""
    by_pid = {p.pid: p for p in power.processes} if power is not None else {}
    rows = [ProcessRow(p.pid, p.comm, p, by_pid.pop(p.pid, None)) for p in processes]
    rows += [ProcessRow(pp.pid, pp.comm, None, pp) for pp in by_pid.values()]
    return tuple(rows)


def idle_row(power: PowerSection | None) -> ProcessRow | None:
    """What no process took, as a row of its own with its share of the host."""
    if power is None:
        return None
    share = power.idle_watts / power.host_watts if power.host_watts > 0 else 0.0
    idle = ProcessPower(0, "Idle", 0.0, power.idle_watts, power.idle_joules, share)
    return ProcessRow(0, "Idle", None, idle, idle=True)


def http_series(red: RedSection | None) -> tuple[HttpSeries, ...]:
    """The RED section's cumulative series as /metrics labels them (service_name,
    service_instance_id, url_scheme, method, route, status): one series set per process, so
    two processes of one service stay apart and Prometheus adds them up. Sorted by labels."""
    if red is None:
        return ()
    out: dict[SeriesKey, HttpSeries] = {}
    for svc in red.services:
        for s in svc.series:
            # semconv's value for a method the instrumentation does not know
            method = "_OTHER" if s.method == UNPARSED_METHOD else s.method
            instance = svc.service_instance_id or str(svc.pid)
            key = (svc.name, instance, s.scheme, method, s.route, s.status)
            count, sum_s, le = s.count, s.sum_s, s.le_counts
            have = out.get(key)
            if have is not None:  # the same process listed twice (read-only mode has no pids)
                count, sum_s = have.count + count, have.sum_s + sum_s
                le = tuple(a + b for a, b in zip(have.le_counts, le))
            out[key] = HttpSeries(svc.name, instance, s.scheme, method, s.route, s.status, count, sum_s, le)
    return tuple(out[key] for key in sorted(out))


def undecoded_counts(red: RedSection | None) -> tuple[UndecodedCount, ...]:
    """Undecoded connections since the probe attached by (service_name, kind), the processes
    of one service added together. Sorted."""
    if red is None:
        return ()
    out: dict[tuple[str, str], int] = {}
    for svc in red.services:
        for kind, n in svc.undecoded_total:
            out[(svc.name, kind)] = out.get((svc.name, kind), 0) + n
    return tuple(UndecodedCount(name, kind, out[(name, kind)]) for name, kind in sorted(out))


def derive(frame: Frame) -> Frame:
    """The Frame with what is read across its sections filled in. A RED section that already
    has its totals (read from a document that holds them) keeps them."""
    red = frame.red
    if red is not None and red.totals is None:
        red = replace(red, totals=red_totals(red.services))
    return replace(
        frame,
        red=red,
        process_rows=process_rows(frame.processes, frame.power),
        idle_row=idle_row(frame.power),
        http_series=http_series(red),
        undecoded=undecoded_counts(red),
    )
