"""Deterministic Frames for the TUI tests and snapshots: fixed host, fixed numbers.

`full_frame(i)` has every section populated (RED services with routes, power, carbon, SLOs);
`off_frame()` has everything but processes off, with the reasons a real host would give.
Both are derived as the engine derives its Frames (analysis/derived.py). `FakeEngine` replays
frames like the real Engine.
"""

from __future__ import annotations

import math

from obs_tui.analysis.carbon import carbon_section, settings_from_config
from obs_tui.analysis.derived import derive
from obs_tui.model import (
    Capability,
    CarbonSection,
    Frame,
    PowerEstimate,
    PowerSection,
    ProcessPower,
    ProcessSample,
    RedSection,
    RouteStats,
    ServiceStats,
    SloAlert,
    SloStatus,
    SourceStatus,
)
from obs_tui.sources.tls_uprobes import NOTHING_KNOWN

HOST = "demo-host"
T0 = 1_700_000_000.0
UPTIME = 3 * 86400 + 4 * 3600 + 12 * 60 + 5

PROCS = [
    # pid, comm, cmdline, user, base cpu %, rss MiB, cpu seconds
    (1412, "nginx", "nginx: worker process", "www-data", 38.0, 12.4, 5123.4),
    (2210, "python3", "python3 -m checkout.api --port 8080", "app", 21.5, 182.0, 2210.7),
    (3301, "postgres", "postgres: app checkout [local] idle", "postgres", 9.2, 96.3, 1402.2),
    (988, "node", "node /srv/search/index.js", "app", 6.4, 240.8, 833.0),
    (1, "systemd", "/sbin/init", "root", 0.3, 11.2, 88.1),
    (650, "sshd", "sshd: /usr/sbin/sshd -D", "root", 0.0, 7.9, 3.2),
    (4100, "obs-tui", "python3 -m obs_tui", "root", 1.1, 64.0, 12.5),
    (712, "containerd", "/usr/bin/containerd", "root", 0.8, 48.5, 401.9),
    (733, "dockerd", "/usr/bin/dockerd -H fd://", "root", 0.4, 88.0, 220.4),
    (845, "redis-server", "redis-server *:6379", "redis", 2.7, 22.1, 303.3),
    (902, "cron", "/usr/sbin/cron -f", "root", 0.0, 2.9, 1.4),
    (1020, "rsyslogd", "/usr/sbin/rsyslogd -n", "syslog", 0.1, 5.5, 9.9),
    (1510, "nginx", "nginx: master process", "root", 0.0, 3.1, 0.8),
    (2700, "gunicorn", "gunicorn billing.wsgi -w 2", "app", 4.9, 120.7, 640.0),
    (2701, "gunicorn", "gunicorn billing.wsgi -w 2", "app", 5.3, 118.2, 655.5),
    (3900, "kworker/0:1", "[kworker/0:1]", "root", 0.2, 0.0, 4.0),
    (3901, "kworker/1:0", "[kworker/1:0]", "root", 0.1, 0.0, 3.1),
    (5000, "bash", "-bash", "alice", 0.0, 5.2, 0.6),
    (5001, "tmux: server", "tmux new -s ops", "alice", 0.2, 6.6, 7.7),
    (5200, "journald", "/lib/systemd/systemd-journald", "root", 0.3, 30.1, 55.0),
    (5300, "chronyd", "/usr/sbin/chronyd -F 1", "_chrony", 0.0, 3.4, 2.2),
    (5400, "udevd", "/lib/systemd/systemd-udevd", "root", 0.0, 9.9, 1.9),
]

SERVICES = [
    # pid, comm, ports, rps, error ratio, p50, p95, p99, routes
    (
        1412,
        "nginx",
        (80, 443),
        1240.0,
        0.002,
        1.8,
        7.4,
        21.0,
        [
            ("GET", "/", 610, 0, 1.2, 4.0, 9.8),
            ("GET", "/static/{file}", 520, 0, 0.9, 2.2, 5.1),
            ("POST", "/api/checkout", 110, 3, 12.0, 48.0, 96.0),
        ],
    ),
    (
        2210,
        "python3",
        (8080,),
        182.5,
        0.021,
        14.2,
        61.0,
        143.0,
        [
            ("POST", "/checkout", 120, 4, 22.0, 80.0, 160.0),
            ("GET", "/users/{id}", 62, 0, 6.5, 14.0, 30.0),
        ],
    ),
    (
        2700,
        "gunicorn",
        (8000,),
        45.0,
        0.0,
        8.8,
        19.5,
        33.0,
        [
            ("GET", "/invoices/{id}", 45, 0, 8.8, 19.5, 33.0),
        ],
    ),
    (845, "redis-server", (6379,), 0.0, 0.0, 0.0, 0.0, 0.0, []),
]
# A server with TLS built in statically: its connections are counted, its requests cannot be.
UNDECODED = {845: (("tls", 312),)}
UNDECODED_REASON = {845: NOTHING_KNOWN}
# nginx answers HTTP/2 (h2 over TLS), the Python service is a gRPC server.
PROTOCOL = {1412: "h2", 2210: "grpc", 2700: "http/1.1"}


def _wave(i: int, pid: int, amp: float) -> float:
    return amp * (0.5 + 0.5 * math.sin(i / 2.0 + pid % 7))


def processes(i: int) -> tuple[ProcessSample, ...]:
    out = []
    for pid, comm, cmd, user, cpu, rss, secs in PROCS:
        pct = round(max(cpu + (_wave(i, pid, cpu * 0.6) - cpu * 0.3), 0.0), 1) if cpu else 0.0
        out.append(ProcessSample(pid, comm, cmd, user, secs + i * cpu / 100.0, pct, int(rss * 1024 * 1024)))
    out.sort(key=lambda p: (-p.cpu_percent, -p.cpu_seconds, p.pid))
    return tuple(out)


def red(i: int) -> RedSection:
    services = []
    for pid, comm, ports, rps, err, p50, p95, p99, routes in SERVICES:
        r = round(rps * (0.8 + 0.4 * (0.5 + 0.5 * math.sin(i / 3.0 + pid % 5))), 1) if rps else 0.0
        reqs = int(r)
        services.append(
            ServiceStats(
                pid,
                comm,
                ports,
                reqs,
                int(reqs * err),
                r,
                err,
                p50,
                p95,
                round(p99 * (0.9 + 0.2 * (0.5 + 0.5 * math.cos(i / 2.0))), 1),
                tuple(RouteStats(*route) for route in routes),
                cmdline=comm,
                routes_total=_totals(routes, i),
                paths=40 * len(routes),
                undecoded_total=UNDECODED.get(pid, ()),
                undecoded_reason=UNDECODED_REASON.get(pid, ""),
                protocol=PROTOCOL.get(pid, ""),
            )
        )
    return RedSection(lost_events=0, services=tuple(services))


def _totals(routes, i: int) -> tuple[RouteStats, ...]:
    """Since-start totals: ten minutes of each route, plus a health check that is quiet now."""
    scale = 600 + i
    out = [
        RouteStats(m, r, req * scale, err * scale, p50, p95, p99) for m, r, req, err, p50, p95, p99 in routes
    ]
    if routes:
        out.append(RouteStats("GET", "/healthz", 120, 0, 0.4, 0.9, 1.1))
    return tuple(out)


ESTIMATE = PowerEstimate(
    "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz",
    "Cascade Lake",
    8,
    0.64,
    3.97,
    32.0,
    0.392,
    "table",
    "https://github.com/cloud-carbon-footprint/"
    "cloud-carbon-footprint/blob/0656d55594b69d74ce35ff18019be36140beaa50/"
    "packages/core/src/compute/ComputeProcessorTypes.ts",
)


def power(i: int) -> PowerSection:
    """An estimate split the way the attribution splits it: processes by CPU, the rest idle."""
    procs = processes(i)
    busy = sum(p.cpu_percent for p in procs) / 100.0 / ESTIMATE.vcpus
    cpu_w = ESTIMATE.vcpus * (0.64 + busy * (3.97 - 0.64))
    memory_w = ESTIMATE.memory_gb * 0.392
    host = cpu_w + memory_w
    active = host * busy
    cpu_total = sum(p.cpu_percent for p in procs)
    pp = []
    for p in procs:
        if p.cpu_percent > 0:
            w = active * p.cpu_percent / cpu_total
            pp.append(
                ProcessPower(
                    p.pid,
                    p.comm,
                    round(p.cpu_seconds, 2),
                    round(w, 3),
                    round(w * (600 + i), 1),
                    round(w / host, 4),
                )
            )
    idle = host - sum(p.watts for p in pp)
    return PowerSection(
        "estimate",
        round(host, 3),
        round(idle, 3),
        (("cpu", round(cpu_w, 3)), ("memory", round(memory_w, 3))),
        tuple(pp),
        busy_ratio=round(busy, 4),
        host_joules=round(host * (600 + i), 1),
        idle_joules=round(idle * (600 + i), 1),
        cpu_time_source="ebpf",
        estimate=ESTIMATE,
        reason="estimate: no RAPL zones in /sys/class/powercap",
    )


CARBON = settings_from_config({"region": "aws:eu-west-1", "embodied_g": 1_000_000.0})


def carbon(i: int) -> CarbonSection:
    """The real formulas over the fake power and RED sections (Ireland's grid, AWS's PUE)."""
    assert CARBON.intensity is not None  # a region's fixed figure, not a live query
    return carbon_section(power(i), red(i), CARBON.intensity, CARBON)


def slos(i: int) -> tuple[SloStatus, ...]:
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

    def rates(base: float) -> tuple:
        return tuple((w, round(base * (1.3 - 0.1 * k), 2)) for k, w in enumerate(windows))

    return (
        SloStatus(
            "checkout-availability",
            "config",
            0.999,
            "30d",
            0.99812,
            round(-0.12 - 0.01 * i, 3),
            rates(16.0),
            (SloAlert("page", "1h", "5m", 14.4, True), SloAlert("ticket", "6h", "30m", 6.0, True)),
            "ok",
        ),
        SloStatus(
            "search-latency",
            "sloth",
            0.99,
            "30d",
            0.9951,
            round(0.51 - 0.002 * i, 3),
            rates(0.4),
            (SloAlert("page", "1h", "5m", 14.4, False),),
            "ok",
        ),
        SloStatus(
            "billing-errors",
            "openslo",
            0.9995,
            "28d",
            0.99962,
            0.24,
            rates(1.8),
            (SloAlert("ticket", "6h", "30m", 6.0, False),),
            "ok",
        ),
        SloStatus(
            "login-availability",
            "config",
            0.999,
            "30d",
            None,
            None,
            tuple((w, None) for w in windows),
            (),
            "no_data",
            'no samples for http_requests_total{job="login"}',
        ),
    )


CAPS_ALL = (
    ("ebpf", Capability(True)),
    ("prometheus", Capability(True)),
    ("rapl", Capability(False, "no RAPL zones in /sys/class/powercap")),
)
CAPS_OFF = (
    ("ebpf", Capability(False, "needs root (CAP_BPF and CAP_PERFMON)")),
    ("prometheus", Capability(False, "no --prometheus URL given")),
    ("rapl", Capability(False, "no RAPL zones in /sys/class/powercap")),
)


def _frame(i: int, capabilities, sources, **sections) -> Frame:
    """Tick i of the demo host, derived as the engine derives its Frames."""
    return derive(
        Frame(
            host=HOST,
            taken_at=T0 + i,
            duration_s=1.0,
            uptime_s=UPTIME,
            interval_s=1.0,
            capabilities=capabilities,
            sources=sources,
            processes=processes(i),
            **sections,
        )
    )


def full_frame(i: int = 0) -> Frame:
    sources = (
        SourceStatus("procs", "live"),
        SourceStatus("red", "live"),
        SourceStatus("power", "estimate"),
        SourceStatus("slo", "live"),
    )
    return _frame(i, CAPS_ALL, sources, red=red(i), power=power(i), carbon=carbon(i), slo=slos(i))


def off_frame(i: int = 0) -> Frame:
    sources = (
        SourceStatus("procs", "live"),
        SourceStatus("red", "off", "needs root (CAP_BPF and CAP_PERFMON)"),
    )
    return _frame(i, CAPS_OFF, sources)


class FakeEngine:
    """Replays frames: frame_fn(0), frame_fn(1), ... Interval long so tests drive ticks. The
    console's view of an engine (engine.EngineView): no polled sources to wait for, no fleet,
    no history unless a test gives one."""

    history: object = None
    history_note = ""

    def __init__(self, frame_fn=full_frame, interval: float = 3600.0) -> None:
        self.frame_fn = frame_fn
        self.interval = interval
        self.ticks = 0
        self.closed = False

    def tick(self, now: float | None = None) -> Frame:
        frame = self.frame_fn(self.ticks)
        self.ticks += 1
        return frame

    def wait_ready(self, timeout_s: float) -> None:
        """Nothing polled: the first frame is ready at once."""

    def cycle_instance(self, step: int = 1) -> str:
        return ""  # no fleet: every host, always

    def close(self) -> None:
        self.closed = True
