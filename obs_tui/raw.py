"""The raw samples the sources hand the engine, and the little that defines them.

A source reads the world and returns one of these; a stage's analysis (obs_tui/analysis/)
turns two of them into a Frame section. They live below both, so that I/O does not depend on
maths and the maths does not depend on I/O: a source imports from here and from model.py,
never from analysis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from obs_tui import probe_constants
from obs_tui.model import PowerEstimate

# ---- histograms: the probe's latency buckets (analysis/histogram.py reads them) --------------


def merge(hists: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """Bucket counts added up (several processes' or children's histograms as one)."""
    out: dict[int, int] = {}
    for hist in hists:
        for index, count in hist.items():
            out[index] = out.get(index, 0) + count
    return out


_UNIT_SHIFT, _SUB, _SUB_BITS = (
    probe_constants.HIST_UNIT_SHIFT,
    probe_constants.HIST_SUB,
    probe_constants.HIST_SUB_BITS,
)
_MAX_LOG, _LAST = probe_constants.HIST_MAX_LOG, probe_constants.HIST_BUCKETS - 1


def bucket_of(ns: int) -> int:
    """The probe's histogram bucket of a duration (bpf/red.c, bucket_of), for the requests
    counted in user space (HTTP/2: sources/h2_streams.py, once per request)."""
    us = ns >> _UNIT_SHIFT
    if us < _SUB:
        return us
    e = us.bit_length() - 1
    if e > _MAX_LOG:
        return _LAST
    return (e - _SUB_BITS + 1) * _SUB + ((us >> (e - _SUB_BITS)) & (_SUB - 1))


# ---- RED from the eBPF probe (sources/red.py -> analysis/red.py) -----------------------------

# Requests answered whose request line the probe could not parse (split across reads,
# pipelined behind another in one read, an unknown method): counted with status and latency,
# under method "?" and this route.
UNPARSED_METHOD = "?"


METHODS = (*probe_constants.METHODS, UNPARSED_METHOD)  # by the probe's method code


class StatKey(NamedTuple):
    """A tuple, not a frozen dataclass: hashed hundreds of times a tick, and a tuple's hash
    is C code."""

    pid: int
    method: str
    status: int  # 0: closed before the response
    path: str
    truncated: bool = False
    gen: int = 0  # which process of that pid (the probe's generation: a reused pid starts anew)
    tls: bool = False  # read and answered through libssl: url_scheme "https"
    proto: str = ""  # "" HTTP/1.x (the probe's own counters), "h2" or "grpc" (sources/h2_streams.py)
    grpc_status: int = -1  # a gRPC call's grpc-status; -1 when none was seen


@dataclass(frozen=True)
class StatEntry:
    count: int
    sum_ns: int
    hist: tuple[tuple[int, int], ...]  # (bucket, count), non-zero buckets only

    def __add__(self, other: StatEntry) -> StatEntry:
        merged = merge((dict(self.hist), dict(other.hist)))
        return StatEntry(self.count + other.count, self.sum_ns + other.sum_ns, tuple(sorted(merged.items())))


@dataclass(frozen=True)
class ServiceInfo:
    comm: str
    cmdline: str
    ports: tuple[int, ...]
    name: str = ""  # the service it belongs to (service_names.py); "" -> comm


def serves_for(child: ServiceInfo | None, ancestor: ServiceInfo) -> bool:
    """Whether a process forked (directly or not) by a listening server answers that server's
    requests as part of it: a fork-per-connection child (Python's ForkingMixIn, inetd-style),
    which runs the server's own program (the same command line) or is gone already (None: it
    exited before anyone looked, as those children do; or an empty command line: it is exiting,
    a zombie its server has not reaped yet). A pre-fork worker that names itself
    (nginx and gunicorn workers set their titles) or a child that ran another program stays
    a service of its own, as it is an independent process that accepts connections."""
    return bool(ancestor.ports) and (child is None or child.cmdline in ("", ancestor.cmdline))


@dataclass(frozen=True)
class RedRaw:
    """One sample of the probe: cumulative since attach."""

    lost_events: int
    stats: dict[StatKey, StatEntry]
    services: dict[int, ServiceInfo]
    patterns: tuple[str, ...] = ()
    max_children: int = 10
    lost_by_slot: tuple[int, ...] = ()  # cumulative, in LOST_REASONS order
    undecoded: dict[tuple[int, str], int] = field(default_factory=dict)  # (pid, kind) -> connections
    # pid -> why its TLS connections are not decrypted (a Go binary without symbols, ...)
    undecoded_reasons: dict[int, str] = field(default_factory=dict)


# ---- RED from Prometheus, read-only mode (sources/readonly.py -> analysis/prom_red.py) -------

ALL = ""  # the instance selection that adds up every instance


@dataclass(frozen=True)
class PromHist:
    count: float
    sum_s: float
    le: tuple[tuple[float, float], ...]  # (upper bound in s, cumulative count), +Inf excluded


# (instance, service_name, method, route, status code)
SeriesKey = tuple[str, str, str, str, int]


@dataclass(frozen=True)
class PromFetch:
    at: float  # when the poller fetched it (epoch s)
    series: dict[SeriesKey, PromHist]

    def instances(self) -> tuple[str, ...]:
        return tuple(sorted({key[0] for key in self.series}))


@dataclass(frozen=True)
class PromRedRaw:
    """What the read-only RED source hands the engine: the last two fetches and the selection."""

    latest: PromFetch
    before: PromFetch | None
    instance: str = ALL


# ---- power (sources/power.py, sources/rapl.py -> analysis/attribution.py) --------------------


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
    at: float = 0.0  # time.monotonic() of the reading (0: unknown, the tick's dt is used)


# ---- power from Prometheus (sources/readonly.py -> analysis/prom_power.py) -------------------

# (instance, obs_kind, other labels sorted, watts)
Row = tuple[str, str, tuple[tuple[str, str], ...], float]


@dataclass(frozen=True)
class PowerSample:
    at: float
    family: str
    rows: tuple[Row, ...]

    def instances(self) -> tuple[str, ...]:
        return tuple(sorted({row[0] for row in self.rows}))


@dataclass(frozen=True)
class PromPowerRaw:
    latest: PowerSample
    instance: str = ALL


# ---- SLOs (sources/slo.py, sources/slo_specs.py -> analysis/slo.py) --------------------------

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def duration_s(text: str) -> float:
    """'30d' -> 2592000.0; ValueError for anything else."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"not a duration like 5m, 1h or 30d: {text!r}")
    return float(int(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True)
class SloReading:
    """What the SLO source hands the analysis for one SLO: its definition, the last good
    values (per window: errors and total, or a ratio already computed) and how fresh they are."""

    name: str
    source: str
    objective: float | None  # None until read from Prometheus (Sloth recording rules)
    period: str
    promql: str
    errors: tuple[tuple[str, float], ...] = ()  # window -> error rate (or increase)
    totals: tuple[tuple[str, float], ...] = ()  # window -> total rate
    ratios: tuple[tuple[str, float], ...] = ()  # window -> error ratio, when recorded as such
    fetched_at: float | None = None
    error: str = ""  # the last failure (query or connection), "" when the last round worked
    problem: str = ""  # why this SLO cannot be queried at all (bad definition)
    burn_history: tuple[float | None, ...] = ()  # 1 h burn rate, oldest first (range query)
    description: str = ""


@dataclass(frozen=True)
class SloRaw:
    """The SLO source's sample: every reading, and the time it was taken."""

    now: float
    readings: tuple[SloReading, ...]
