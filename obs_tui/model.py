"""The Frame: one immutable picture of the host per engine tick.

Every sink (TUI, `snapshot --json`, exporter) reads Frames; nothing else carries numbers
between the engine and the screen. All types are frozen dataclasses of plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Capability:
    """Whether a data source can work on this host, and in plain words why not."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class SourceStatus:
    """How a source did on the last tick, for the header badges and pane notices.

    mode: "live" (real measurements), "estimate" (modelled numbers, clearly labelled),
    "off" (not available; reason says why and how to enable it).
    stale: the source was available but its last sample failed; the pane keeps the
    previous numbers and shows the reason.
    """

    name: str
    mode: str
    reason: str = ""
    stale: bool = False


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    comm: str
    cmdline: str
    user: str
    cpu_seconds: float
    cpu_percent: float
    rss_bytes: int


@dataclass(frozen=True)
class RouteStats:
    method: str
    route: str
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    aborted: int = 0  # connections closed while the request waited for its response
    status_classes: tuple[tuple[str, int], ...] = ()  # (("2xx", n), ("4xx", n), ...)


@dataclass(frozen=True)
class ServiceStats:
    pid: int
    comm: str
    ports: tuple[int, ...]
    requests: int
    errors: int
    rps: float
    error_ratio: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    routes: tuple[RouteStats, ...] = ()
    cmdline: str = ""
    aborted: int = 0  # connections closed while the request waited for its response
    status_classes: tuple[tuple[str, int], ...] = ()  # (("2xx", n), ("4xx", n), ...)
    routes_total: tuple[RouteStats, ...] = ()  # since the probe attached, quiet routes included
    paths: int = 0  # distinct request paths behind routes_total (more than routes: normalised, capped)


@dataclass(frozen=True)
class RedSection:
    lost_events: int  # over the frame's window, like the counts
    services: tuple[ServiceStats, ...]
    lost_since_attach: int = 0
    lost_reasons: tuple[tuple[str, int], ...] = ()  # since attach: (why, how many), non-zero only


@dataclass(frozen=True)
class ProcessPower:
    pid: int
    comm: str
    cpu_seconds: float
    watts: float
    joules: float


@dataclass(frozen=True)
class PowerSection:
    source: str  # "rapl" | "estimate"
    host_watts: float
    idle_watts: float
    zones: tuple[tuple[str, float], ...]
    processes: tuple[ProcessPower, ...]


@dataclass(frozen=True)
class ProcessCarbon:
    pid: int
    g_per_h: float
    joules_per_request: float | None
    g_per_1k_requests: float | None


@dataclass(frozen=True)
class CarbonSection:
    grid_g_per_kwh: float
    pue: float
    host_g_per_h: float
    processes: tuple[ProcessCarbon, ...]


@dataclass(frozen=True)
class SloAlert:
    severity: str
    long: str
    short: str
    factor: float
    firing: bool


@dataclass(frozen=True)
class SloStatus:
    name: str
    source: str
    objective: float
    period: str
    sli: float | None
    error_budget_remaining: float | None
    burn_rates: tuple[tuple[str, float | None], ...]
    alerts: tuple[SloAlert, ...]
    state: str  # "ok" | "no_data" | "error"
    reason: str = ""


@dataclass(frozen=True)
class Frame:
    host: str
    taken_at: float  # epoch seconds
    duration_s: float  # the window that counts and rates cover
    uptime_s: float
    interval_s: float
    capabilities: tuple[tuple[str, Capability], ...]
    sources: tuple[SourceStatus, ...]
    processes: tuple[ProcessSample, ...] = ()
    red: RedSection | None = None
    power: PowerSection | None = None
    carbon: CarbonSection | None = None
    slo: tuple[SloStatus, ...] = ()
    schema: int = field(default=SCHEMA_VERSION)

    def source(self, name: str) -> SourceStatus | None:
        for status in self.sources:
            if status.name == name:
                return status
        return None

    def capability(self, name: str) -> Capability | None:
        return dict(self.capabilities).get(name)
