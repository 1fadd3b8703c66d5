"""The Frame: one immutable picture of the host per engine tick.

Every sink (TUI, `snapshot --json`, exporter) reads Frames; nothing else carries numbers
between the engine and the screen. All types are frozen dataclasses of plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Capability:
    """Whether a data source can work on this host, and in plain words why not.

    state: "ok", "degraded" (works in part: some requests answered, some not) or "off";
    stale_since: epoch of the first failure since the last good answer (services only)."""

    ok: bool
    reason: str = ""
    state: str = ""  # "" is filled from ok: "ok" or "off"
    stale_since: float | None = None

    def __post_init__(self) -> None:
        if not self.state:
            object.__setattr__(self, "state", "ok" if self.ok else "off")


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
    join: bool = False  # computed from other sources' sections (the carbon join), not sampled
    stale_since: float | None = None  # epoch of the first failure since its last good data


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    comm: str
    cmdline: str
    user: str
    cpu_seconds: float
    cpu_percent: float
    rss_bytes: int
    exe: str = ""  # the executable's path, "" when unreadable (another user's, after the drop)
    container_id: str = ""  # from /proc/PID/cgroup, "" outside a container
    kernel_thread: bool = False  # kworker/* and friends: no executable, names that churn


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
    grpc_status: tuple[tuple[str, int], ...] = ()  # gRPC calls by grpc-status: (("0", n), ("5", n))


@dataclass(frozen=True)
class RequestSeries:
    """Requests of one (method, route, status code) since the probe attached: what the exporter
    publishes as `http_server_request_duration_seconds`. `le_counts` are cumulative counts of
    requests no longer than each of histogram.SEMCONV_BOUNDS_S (the +Inf bucket is `count`)."""

    method: str
    route: str
    status: int
    count: int
    sum_s: float
    le_counts: tuple[int, ...]
    scheme: str = "http"  # url_scheme: "https" when read and answered through libssl


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
    series: tuple[RequestSeries, ...] = ()  # since the probe attached, per status code
    # The service it belongs to (service_names.py): OTEL_SERVICE_NAME, a config rule,
    # else comm:port. The same on every surface: rows, snapshot --json, /metrics.
    service_name: str = ""
    service_instance_id: str = ""  # this process within its service (its pid on this host)

    @property
    def name(self) -> str:
        return self.service_name or self.comm

    # Connections whose requests the probe cannot decode, by kind ("tls", "http2"): over the
    # window, and since the probe attached (what the row's marker and the exporter show).
    undecoded: tuple[tuple[str, int], ...] = ()
    undecoded_total: tuple[tuple[str, int], ...] = ()
    # Why its TLS connections are not decrypted, when the probe knows ("" otherwise).
    undecoded_reason: str = ""
    protocol: str = ""  # "http/1.1", "h2" or "grpc" (its requests since the probe attached); "" none

    @property
    def key(self) -> int | str:
        """A service's identity: its pid; its name in read-only mode (services have no pid)."""
        return self.pid if self.pid > 0 else self.comm


@dataclass(frozen=True)
class RedTotals:
    """Every service of a RED section together (analysis/derived.py): the Requests pane's
    summary line and `snapshot --json`'s red.totals."""

    services: int
    rps: float
    requests: int
    errors: int
    error_ratio: float  # errors / requests over all services, 0 without requests


@dataclass(frozen=True)
class RedSection:
    lost_events: int  # over the frame's window, like the counts
    services: tuple[ServiceStats, ...]
    lost_since_attach: int = 0
    lost_reasons: tuple[tuple[str, int], ...] = ()  # since attach: (why, how many), non-zero only
    # None until derived (analysis/derived.py: the engine, and the reader of history written
    # before the field existed)
    totals: RedTotals | None = None


@dataclass(frozen=True)
class HttpSeries:
    """One series of `http_server_request_duration_seconds` as /metrics labels it: a
    RequestSeries of one process, under OpenTelemetry's names (analysis/derived.py)."""

    service_name: str
    service_instance_id: str
    url_scheme: str
    method: str  # "_OTHER" for a request line that was not parsed (semconv's value)
    route: str
    status: int
    count: int
    sum_s: float
    le_counts: tuple[int, ...]  # cumulative, per histogram.SEMCONV_BOUNDS_S

    @property
    def labels(self) -> tuple[str, str, str, str, str, int]:
        return (
            self.service_name,
            self.service_instance_id,
            self.url_scheme,
            self.method,
            self.route,
            self.status,
        )


@dataclass(frozen=True)
class UndecodedCount:
    """Connections of one service (its processes together) that the probe could not decode,
    since it attached, by kind ("tls", "http2"), as /metrics labels them."""

    service_name: str
    kind: str
    connections: int


@dataclass(frozen=True)
class ProcessPower:
    pid: int
    comm: str
    cpu_seconds: float  # on-CPU seconds since the engine started (the window, in a snapshot)
    watts: float  # over the last tick
    joules: float  # since the engine started (the window, in a snapshot)
    share: float = 0.0  # watts / host watts, 0..1


@dataclass(frozen=True)
class ProcessRow:
    """A process with its power, as the power pane lists it (analysis/derived.py): the procs
    source's sample joined by pid with the power section's row. `sample` None: the process
    has exited since (eBPF saw it use power), or the Idle row; `power` None: no power
    section, or no power attributed to it."""

    pid: int
    comm: str
    sample: ProcessSample | None
    power: ProcessPower | None
    idle: bool = False  # the Idle row: what no process took

    @property
    def key(self) -> int | str:
        return "idle" if self.idle else self.pid


@dataclass(frozen=True)
class PowerEstimate:
    """How an estimated host figure was made (Cloud Carbon Footprint's method), for the pane."""

    cpu_model: str  # from /proc/cpuinfo
    microarchitecture: str  # the coefficient row used, or "CCF average"
    vcpus: int
    min_watts_per_vcpu: float
    max_watts_per_vcpu: float
    memory_gb: float
    memory_watts_per_gb: float
    coefficients_from: str  # "table", "average" or "config"
    source_url: str


@dataclass(frozen=True)
class PowerSection:
    """Host power and its split over processes for one tick.

    zones: the parts the host figure is the sum of (no part counted twice): with RAPL psys,
    just psys; otherwise package-N and dram-N; for an estimate, cpu and memory.
    subzones: breakdown rows inside those (core-N, uncore-N; package-N and dram-N under psys).
    Conservation: sum(processes.watts) + idle_watts == host_watts.
    """

    source: str  # "rapl" | "estimate"
    host_watts: float
    idle_watts: float
    zones: tuple[tuple[str, float], ...]
    processes: tuple[ProcessPower, ...]
    subzones: tuple[tuple[str, float], ...] = ()
    busy_ratio: float = 0.0  # node CPU busy time / all CPU time over the tick (/proc/stat)
    host_joules: float = 0.0  # since the engine started
    idle_joules: float = 0.0  # since the engine started
    zone_joules: tuple[tuple[str, float], ...] = ()  # per zone of `zones`, since the engine started
    cpu_time_source: str = ""  # "ebpf" (sched_switch) | "proc" (/proc/PID/stat)
    estimate: PowerEstimate | None = None
    reason: str = ""  # why RAPL or eBPF is not the source, when it is not
    # Seconds the watts cover: energy is read once a second at most whatever the interval
    # (sources/power.py: ENERGY_WINDOW_S less a 50 ms timer slack); 0 before the first window.
    window_s: float = 0.0


@dataclass(frozen=True)
class ProcessCarbon:
    pid: int
    g_per_h: float  # operational, PUE included
    joules_per_request: float | None  # None when the process answered no requests
    g_per_1k_requests: float | None
    comm: str = ""
    watts: float = 0.0  # attributed by the power source
    grams: float = 0.0  # since obs-tui started (or over the snapshot's window)
    rps: float | None = None  # None: not an HTTP service


@dataclass(frozen=True)
class CarbonSection:
    grid_g_per_kwh: float
    pue: float
    host_g_per_h: float  # operational, PUE included
    processes: tuple[ProcessCarbon, ...]
    intensity_source: str = "default"  # "config" | "region" | "query" | "default"
    intensity_label: str = ""  # e.g. "aws:eu-west-1 (EEA via CCF, year n/s)"
    pue_source: str = "default"  # "config" | "preset aws" | "region aws" | "default"
    power_source: str = ""  # the power section's: "rapl" | "estimate"
    host_watts: float = 0.0
    host_grams: float = 0.0  # operational, since obs-tui started
    kg_per_day: float = 0.0  # (operational + embodied) g/h x 24 h
    embodied_g_per_h: float | None = None  # SCI's M per host-hour; None unless configured


@dataclass(frozen=True)
class SloAlert:
    severity: str  # "page" | "ticket"
    long: str
    short: str
    factor: float  # burn-rate threshold
    firing: bool | None  # None: unknown (no answer yet, or no series)
    threshold: float = 0.0  # the error ratio both windows must exceed: factor * (1 - objective)
    reachable: bool = True  # False when threshold > 1: even 100 % errors cannot fire it


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
    time_to_exhaustion_s: float | None = None  # at the current 1 h burn; None when not burning
    data_age_s: float | None = None  # since the last successful query; None before the first
    last_error: str = ""  # the last failed refresh (the numbers are then the older ones)
    promql: str = ""  # the one instant query that reads every window
    error_ratios: tuple[tuple[str, float | None], ...] = ()  # windows and the period
    burn_history: tuple[float | None, ...] = ()  # 1 h burn rate over the last hours, oldest first
    description: str = ""


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
    instance: str = ""  # read-only mode: the Prometheus `instance` shown, "" for all of them
    instances: tuple[str, ...] = ()  # read-only mode: every instance seen
    # Read across the sections above by analysis/derived.py (the engine, and the reader of
    # recorded frames): not in the snapshot document, which holds what they are read from.
    process_rows: tuple[ProcessRow, ...] = ()  # every process, then those gone that used power
    idle_row: ProcessRow | None = None  # with a power section: what no process took
    http_series: tuple[HttpSeries, ...] = ()  # sorted by labels
    undecoded: tuple[UndecodedCount, ...] = ()  # sorted by (service_name, kind)

    def source(self, name: str) -> SourceStatus | None:
        for status in self.sources:
            if status.name == name:
                return status
        return None

    def capability(self, name: str) -> Capability | None:
        return dict(self.capabilities).get(name)
