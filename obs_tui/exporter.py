"""The exporter: the engine's Frames as Prometheus metrics on /metrics (prometheus_client).

A sink like the TUI and `snapshot`: `FrameCollector.publish(frame)` is called for every Frame
the engine emits (Engine sinks), and a scrape renders the latest one. The server answers three
things only: /metrics and /-/ready, both 503 until the first Frame has been published (the
engine makes its first Frame after every probe is attached, so counts from then on are whole)
and again whenever Frames have stopped coming, and 404 for any other path. Nothing here measures:
HTTP histograms are the RED section's cumulative series; energy and carbon counters are the
power and carbon sections' totals since the engine started.

What leaves the host is what is listed in METRICS below (docs/metrics.md), nothing else: no
command lines, no paths but normalised routes and the executables of the top processes.
Energy changes at most once a second (ENERGY_STEP_S): finer energy readings are a side channel
(Platypus, CVE-2020-8694), so the counters and power gauges are frozen between steps and
energy is rounded to whole joules.
"""

from __future__ import annotations

import base64
import hmac
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from obs_tui import __version__, web_config
from obs_tui.analysis.histogram import SEMCONV_BOUNDS_S
from obs_tui.analysis.red import LOST_REASONS
from obs_tui.config import split_listen
from obs_tui.model import Frame
from obs_tui.text import printable

DEFAULT_LISTEN = "127.0.0.1:9464"
ENERGY_STEP_S = 1.0
HANDLER_TIMEOUT_S = 10.0
# /metrics answers 503 once the engine has made no Frame for this many intervals (and at least
# STALE_MIN_S: a tick under load can take seconds), so that Prometheus marks the target down
# rather than storing the last numbers as current.
STALE_TICKS = 3
STALE_MIN_S = 10.0
HTTP_LABELS = (
    "service_name",
    "service_instance_id",
    "url_scheme",
    "http_request_method",
    "http_route",
    "http_response_status_code",
)
PROCESS_LABELS = ("pid", "comm", "exe", "container_id")  # what Kepler's users join on
# Every family the agent publishes (docs/metrics.md describes each); counters with _total.
METRICS = (
    "obs_build_info",
    "http_server_request_duration_seconds",
    "obs_red_lost_events_total",
    "obs_host_power_watts",
    "obs_host_zone_power_watts",
    "obs_host_energy_joules_total",
    "obs_host_zone_energy_joules_total",
    "obs_process_cpu_joules_total",
    "obs_host_carbon_grams_total",
    "obs_process_carbon_grams_total",
    "obs_grid_intensity_grams_per_kilowatt_hour",
    "obs_http_server_undecoded_connections_total",
    "obs_source_up",
)


class ExporterError(Exception):
    """A bad listen address, TLS file or password file: one line for the user."""


def parse_listen(text: str, where: str = "--listen") -> tuple[str, int]:
    """ADDR:PORT (IPv6 in brackets) -> (host, port)."""
    address = split_listen(text)
    if address is None:
        raise ExporterError(f"{where}: expected ADDR:PORT such as {DEFAULT_LISTEN}, got {text!r}")
    return address


@dataclass
class _Energy:
    """What the energy metrics show until the next step: whole joules, grams to the milligram,
    watts to a tenth. Per process: (pid, comm, exe, container_id) -> value."""

    at: float = float("-inf")
    source: str = ""
    host_watts: float | None = None
    zone_watts: tuple[tuple[str, float], ...] = ()
    host_joules: float = 0.0
    zone_joules: tuple[tuple[str, float], ...] = ()
    joules: dict[tuple[str, str, str, str], float] | None = None
    host_grams: float | None = None
    grams: dict[tuple[str, str, str, str], float] | None = None
    grid: float | None = None


class FrameCollector(Collector):
    """Turns the latest Frame into metric families on each scrape.

    top_processes bounds the per-process series (by energy since start; kernel threads are
    left out: kworker/* names churn, and their energy is in the host's and idle figures);
    routes are already normalised by the RED analysis (routes.normalise caps children per
    path segment)."""

    def __init__(self, top_processes: int = 20, clock: Callable[[], float] = time.monotonic) -> None:
        self.top_processes = top_processes
        self.clock = clock
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._published_at = 0.0
        self._shown = _Energy()

    @property
    def frame(self) -> Frame | None:
        with self._lock:
            return self._frame

    def not_serving(self) -> str:
        """Why /metrics and /-/ready answer 503 now ("" when they answer 200): no Frame yet,
        or none for longer than STALE_TICKS intervals (the engine stopped ticking: the last
        Frame's numbers would pass for current ones)."""
        with self._lock:
            frame, at = self._frame, self._published_at
        if frame is None:
            return "not ready: loading the probes, no frame yet"
        age = self.clock() - at
        if age > max(STALE_TICKS * frame.interval_s, STALE_MIN_S):
            return f"stale: no new frame for {age:.0f} s (interval {frame.interval_s:g} s)"
        return ""

    def publish(self, frame: Frame) -> None:
        with self._lock:
            self._frame = frame
            now = self._published_at = self.clock()
            if now - self._shown.at >= ENERGY_STEP_S:
                self._shown = energy_step(frame, now, self.top_processes)

    def describe(self) -> Iterator[Any]:
        return iter(())  # families depend on the frame; registering must not call collect()

    def collect(self) -> Iterator[Any]:
        with self._lock:
            frame, shown = self._frame, self._shown
        info = GaugeMetricFamily(
            "obs_build_info", "obs-tui build and host; always 1", labels=("version", "host")
        )
        info.add_metric(_labels(__version__, frame.host if frame else ""), 1.0)
        yield info
        if frame is None:
            return
        yield _source_up(frame)
        yield from http_families(frame)
        yield from energy_families(shown)


def _process_labels(frame: Frame) -> dict[int, tuple[str, str, str, str] | None]:
    """pid -> its labels, None for a kernel thread (never published)."""
    return {
        p.pid: None if p.kernel_thread else (str(p.pid), p.comm, p.exe, p.container_id)
        for p in frame.processes
    }


def _top(
    rows: list[tuple[int, str, float]],
    labels: dict[int, tuple[str, str, str, str] | None],
    n: int,
    digits: int | None,
) -> dict[tuple[str, str, str, str], float]:
    """The n largest (pid, comm, value) rows that are not kernel threads, keyed by labels."""
    out: dict[tuple[str, str, str, str], float] = {}
    for pid, comm, value in sorted(rows, key=lambda r: -r[2]):
        if len(out) >= n:
            break
        known = labels.get(pid, (str(pid), comm, "", ""))
        if known is None or comm.startswith(KERNEL_THREAD_PREFIXES):
            continue
        out[known] = float(int(value)) if digits is None else round(value, digits)
    return out


# Kernel threads by name, for a process the Frame's process list no longer holds (it exited
# between the power and the process sample): their names churn with their work queue.
KERNEL_THREAD_PREFIXES = ("kworker/", "ksoftirqd/", "migration/", "rcu_", "cpuhp/", "idle_inject/")


def energy_step(frame: Frame, now: float, top_processes: int) -> _Energy:
    """The energy figures to publish for the next ENERGY_STEP_S (see the module docstring)."""
    shown = _Energy(at=now)
    labels = _process_labels(frame)
    if frame.power is not None:
        power = frame.power
        shown.source = power.source
        shown.host_watts = round(power.host_watts, 1)
        shown.zone_watts = tuple((zone, round(w, 1)) for zone, w in power.zones)
        shown.host_joules = float(int(power.host_joules))
        shown.zone_joules = tuple((zone, float(int(j))) for zone, j in power.zone_joules)
        shown.joules = _top([(p.pid, p.comm, p.joules) for p in power.processes], labels, top_processes, None)
    if frame.carbon is not None:
        carbon = frame.carbon
        shown.host_grams = round(carbon.host_grams, 3)
        shown.grams = _top([(c.pid, c.comm, c.grams) for c in carbon.processes], labels, top_processes, 3)
        shown.grid = carbon.grid_g_per_kwh
    return shown


def http_families(frame: Frame) -> Iterator[Any]:
    """http_server_request_duration_seconds: the Frame's series (the RED section's cumulative
    series, labelled as OpenTelemetry's semantic conventions name them)."""
    if frame.red is None:
        return
    hist = HistogramMetricFamily(
        "http_server_request_duration_seconds",
        "Duration of HTTP server requests, first byte read to first byte written "
        "(eBPF, since obs-tui attached)",
        labels=HTTP_LABELS,
        unit="seconds",
    )
    for s in frame.http_series:
        buckets = [(_le(b), float(n)) for b, n in zip(SEMCONV_BOUNDS_S, s.le_counts)]
        buckets.append(("+Inf", float(s.count)))
        labels = (s.service_name, s.service_instance_id, s.url_scheme, s.method, s.route, str(s.status))
        hist.add_metric(_labels(*labels), buckets, s.sum_s)
    yield hist
    # What the probe saw but could not record, by reason: without it, a scrape that shows
    # fewer requests than were served would look like less traffic.
    recorded = dict(frame.red.lost_reasons)
    yield _filled(
        CounterMetricFamily(
            "obs_red_lost_events",
            "Requests or responses the probe saw but could not record, since it attached",
            labels=("reason",),
        ),
        [((reason,), float(recorded.get(reason, 0))) for reason in LOST_REASONS],
    )
    yield _filled(
        CounterMetricFamily(
            "obs_http_server_undecoded_connections",
            "Server connections whose requests obs-tui cannot decode (kind: tls from a TLS library "
            "it does not trace, http2), since obs-tui attached",
            labels=("service_name", "kind"),
        ),
        [((u.service_name, u.kind), float(u.connections)) for u in frame.undecoded],
    )


def energy_families(shown: _Energy) -> Iterator[Any]:
    """Power, energy and carbon. The host total and its zones are separate metrics, so a sum
    over either never counts a joule twice; energy is counters, as Kepler and node_exporter
    publish it (rate() gives watts)."""
    if shown.host_watts is not None:
        source = (shown.source,)
        yield _filled(
            GaugeMetricFamily(
                "obs_host_power_watts",
                "Host power (all zones together); source rapl or estimate",
                labels=("source",),
                unit="watts",
            ),
            [(source, shown.host_watts)],
        )
        yield _filled(
            GaugeMetricFamily(
                "obs_host_zone_power_watts",
                "Power of each zone the host total is the sum of (psys, "
                "or package-N and dram-N; cpu and memory for an estimate)",
                labels=("zone", "source"),
                unit="watts",
            ),
            [((zone, *source), w) for zone, w in shown.zone_watts],
        )
        yield _filled(
            CounterMetricFamily(
                "obs_host_energy_joules",
                "Host energy since obs-tui started (whole joules)",
                labels=("source",),
                unit="joules",
            ),
            [(source, shown.host_joules)],
        )
        yield _filled(
            CounterMetricFamily(
                "obs_host_zone_energy_joules",
                "Energy of each zone since obs-tui started (whole joules)",
                labels=("zone", "source"),
                unit="joules",
            ),
            [((zone, *source), j) for zone, j in shown.zone_joules],
        )
    if shown.joules is not None:
        yield _filled(
            CounterMetricFamily(
                "obs_process_cpu_joules",
                "CPU energy attributed to a process since obs-tui started "
                "(whole joules, updated at most once a second)",
                labels=PROCESS_LABELS,
                unit="joules",
            ),
            shown.joules.items(),
        )
    if shown.host_grams is not None:
        yield _filled(
            CounterMetricFamily(
                "obs_host_carbon_grams",
                "Operational carbon of the host since obs-tui started (grams CO2e, PUE included)",
                labels=(),
                unit="grams",
            ),
            [((), shown.host_grams)],
        )
    if shown.grams is not None:
        yield _filled(
            CounterMetricFamily(
                "obs_process_carbon_grams",
                "Operational carbon of a process since obs-tui started (grams CO2e)",
                labels=PROCESS_LABELS,
                unit="grams",
            ),
            shown.grams.items(),
        )
    if shown.grid is not None:
        yield GaugeMetricFamily(
            "obs_grid_intensity_grams_per_kilowatt_hour",
            "Grid carbon intensity used (grams CO2e per kWh)",
            value=shown.grid,
            unit="grams_per_kilowatt_hour",
        )


def _filled(family: Any, rows: Iterable[tuple[tuple[str, ...], float]]) -> Any:
    for labels, value in rows:
        family.add_metric(_labels(*labels), value)
    return family


def _labels(*values: str) -> tuple[str, ...]:
    """Label values as served: printable (obs_tui/text.py), since /metrics is often read with
    curl on a terminal and the exposition format escapes only backslash, quote and newline."""
    return tuple(printable(v) for v in values)


def sources_off(frame: Frame | None) -> list[str]:
    """What a ready agent will not measure: each source that is off, with its reason."""
    return [f"{s.name} off: {s.reason}" for s in frame.sources if s.mode == "off"] if frame else []


def _le(bound: float) -> str:
    return f"{bound:g}" if bound < 1 else f"{bound:.1f}"


def _source_up(frame: Frame) -> GaugeMetricFamily:
    """1 while a source (or a capability without a source of that name: ebpf, rapl, prometheus)
    gives fresh data, 0 while it is off or stale: the same status the console's header shows."""
    up = GaugeMetricFamily(
        "obs_source_up", "1 while the source gives fresh data, 0 while it is off or stale", labels=("source",)
    )
    names = set()
    for status in frame.sources:
        names.add(status.name)
        up.add_metric((status.name,), 0.0 if status.stale or status.mode == "off" else 1.0)
    for name, cap in frame.capabilities:
        if name not in names:
            up.add_metric((name,), 1.0 if cap.ok else 0.0)
    return up


# ---- the HTTP server -----------------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the request's thread with a timeout, not in accept():
        # a client that connects and says nothing must not stall every other scrape.
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(HANDLER_TIMEOUT_S)
            request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a failed handshake or a dropped client is the client's problem, not a traceback


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    timeout = HANDLER_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would flood the terminal the console owns


def _text(start_response: Callable, status: str, body: str) -> list[bytes]:
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body.encode())))]
    )
    return [body.encode()]


def _routed(metrics: Callable, collector: FrameCollector) -> Callable:
    """/metrics and /-/ready, 503 until the first Frame or while Frames have stopped; 404 for
    anything else. Before its first Frame an agent has only build_info to say: a client that
    took that 200 as "up" and started its traffic would see the requests made while the probes
    load go uncounted."""

    def app(environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path not in ("/metrics", "/-/ready"):
            return _text(
                start_response, "404 Not Found", "not found: this server answers /metrics and /-/ready\n"
            )
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _text(start_response, "405 Method Not Allowed", "GET or HEAD only\n")
        why = collector.not_serving()
        if why:
            return _text(start_response, "503 Service Unavailable", why + "\n")
        if path == "/-/ready":
            return _text(
                start_response,
                "200 OK",
                "".join(f"{line}\n" for line in ["ready", *sources_off(collector.frame)]),
            )
        return metrics(environ, start_response)

    return app


def _read_password(path: str) -> str:
    try:
        return Path(path).read_text().rstrip("\n")
    except OSError as exc:
        raise ExporterError(f"exporter.basic_auth_password_file {path}: {exc.strerror}") from None


def _with_basic_auth(app: Callable, user: str, password: str) -> Callable:
    expected = b"Basic " + base64.b64encode(f"{user}:{password}".encode())

    def guarded(environ: dict, start_response: Callable) -> Any:
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):  # constant time: no length/prefix oracle
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="obs-tui"'), ("Content-Type", "text/plain")],
            )
            return [b"unauthorized\n"]
        return app(environ, start_response)

    return guarded


@dataclass
class MetricsServer:
    server: _Server
    thread: threading.Thread
    url: str

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(
    collector: FrameCollector,
    listen: str = DEFAULT_LISTEN,
    tls_cert_file: str = "",
    tls_key_file: str = "",
    basic_auth_user: str = "",
    basic_auth_password_file: str = "",
    where: str = "--listen",
    web_config_file: str = "",
) -> MetricsServer:
    """Serve /metrics in a daemon thread; ExporterError (one line) for bad settings.
    web_config_file: an exporter-toolkit web-config.yml (obs_tui/web_config.py), instead of
    the tls_* and basic_auth_* settings."""
    host, port = parse_listen(listen, where)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    app = _routed(make_wsgi_app(registry), collector)
    context = None
    if web_config_file:
        if tls_cert_file or tls_key_file or basic_auth_user or basic_auth_password_file:
            raise ExporterError("exporter: give web_config_file or the tls_*/basic_auth_* keys, not both")
        try:
            web = web_config.load(web_config_file)
        except web_config.WebConfigError as exc:
            raise ExporterError(f"exporter: {exc}") from None
        app, context = web_config.guard(app, web), web.context
    if basic_auth_user or basic_auth_password_file:
        if not (basic_auth_user and basic_auth_password_file):
            raise ExporterError(
                "exporter: basic auth needs both basic_auth_user and basic_auth_password_file"
            )
        app = _with_basic_auth(app, basic_auth_user, _read_password(basic_auth_password_file))
    if tls_cert_file or tls_key_file:
        if not (tls_cert_file and tls_key_file):
            raise ExporterError("exporter: TLS needs both tls_cert_file and tls_key_file")
        try:
            context = web_config.server_context(
                tls_cert_file, tls_key_file, f"TLS certificate {tls_cert_file} / key {tls_key_file}"
            )
        except web_config.WebConfigError as exc:
            raise ExporterError(f"exporter: {exc}") from None
    try:
        server = make_server(
            host, port, app, server_class=_Server6 if ":" in host else _Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise ExporterError(f"{where}: cannot listen on {listen}: {exc.strerror or exc}") from None
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    shown = f"[{host}]" if ":" in host else host
    return MetricsServer(server, thread, f"{scheme}://{shown}:{server.server_port}/metrics")


def serve_from_config(
    collector: FrameCollector,
    exporter: dict[str, Any],
    listen: str,
    where: str,
    web_config_file: str | None = None,
) -> MetricsServer:
    """web_config_file: the command line's, which takes the place of the config's."""
    return serve(
        collector,
        listen,
        exporter.get("tls_cert_file", ""),
        exporter.get("tls_key_file", ""),
        exporter.get("basic_auth_user", ""),
        exporter.get("basic_auth_password_file", ""),
        where=where,
        web_config_file=web_config_file or exporter.get("web_config_file", ""),
    )
