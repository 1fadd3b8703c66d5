"""The exporter: the engine's Frames as Prometheus metrics on /metrics (prometheus_client).

A sink like the TUI and `snapshot`: `FrameCollector.publish(frame)` is called for every Frame
the engine emits (Engine sinks), and a scrape renders the latest one. Nothing here measures:
HTTP histograms are the RED section's cumulative series; energy and carbon counters are the
power and carbon sections' totals since the engine started.

What leaves the host is what is listed in METRICS below, nothing else (no command lines, no
paths but normalised routes). Energy changes at most once a second (ENERGY_STEP_S): finer
energy readings are a side channel (Platypus, CVE-2020-8694), so the counters and power
gauges are frozen between steps and energy is rounded to whole joules.
"""

from __future__ import annotations

import base64
import hmac
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from obs_tui import __version__
from obs_tui.analysis.histogram import SEMCONV_BOUNDS_S
from obs_tui.analysis.red import semconv_series
from obs_tui.model import Frame

DEFAULT_LISTEN = "127.0.0.1:9464"
ENERGY_STEP_S = 1.0
HANDLER_TIMEOUT_S = 10.0
HTTP_LABELS = ("service_name", "http_request_method", "http_route", "http_response_status_code")
METRICS = ("http_server_request_duration_seconds", "obs_process_cpu_joules_total",
           "obs_host_power_watts", "obs_process_carbon_grams_total", "obs_grid_intensity_g_per_kwh",
           "obs_build_info", "obs_source_up")


class ExporterError(Exception):
    """A bad listen address, TLS file or password file: one line for the user."""


def parse_listen(text: str, where: str = "--listen") -> tuple[str, int]:
    """ADDR:PORT (IPv6 in brackets) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ExporterError(f"{where}: expected ADDR:PORT such as {DEFAULT_LISTEN}, got {text!r}")
    return host, int(port)


@dataclass
class _Energy:
    """What the energy metrics show until the next step: whole joules and grams, rounded watts."""

    at: float = float("-inf")
    joules: dict[tuple[str, str], float] | None = None
    grams: dict[tuple[str, str], float] | None = None
    zones: tuple[tuple[str, str, float], ...] = ()
    grid: float | None = None


class FrameCollector(Collector):
    """Turns the latest Frame into metric families on each scrape.

    top_processes bounds the per-process series (by energy since start); routes are already
    normalised by the RED analysis (routes.normalise caps children per path segment)."""

    def __init__(self, top_processes: int = 20, clock: Callable[[], float] = time.monotonic) -> None:
        self.top_processes = top_processes
        self.clock = clock
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._shown = _Energy()

    def publish(self, frame: Frame) -> None:
        with self._lock:
            self._frame = frame
            now = self.clock()
            if now - self._shown.at >= ENERGY_STEP_S:
                self._shown = self._energy_step(frame, now)

    def _energy_step(self, frame: Frame, now: float) -> _Energy:
        shown = _Energy(at=now)
        if frame.power is not None:
            top = sorted(frame.power.processes, key=lambda p: -p.joules)[:self.top_processes]
            shown.joules = {(str(p.pid), p.comm): float(int(p.joules)) for p in top}
            source = frame.power.source
            shown.zones = tuple((zone, source, round(w, 1)) for zone, w in frame.power.zones)
            shown.zones += (("host", source, round(frame.power.host_watts, 1)),)
        if frame.carbon is not None:
            top = sorted(frame.carbon.processes, key=lambda c: -c.grams)[:self.top_processes]
            shown.grams = {(str(c.pid), c.comm): round(c.grams, 3) for c in top}
            shown.grid = frame.carbon.grid_g_per_kwh
        return shown

    def describe(self) -> Iterator[Any]:
        return iter(())  # families depend on the frame; registering must not call collect()

    def collect(self) -> Iterator[Any]:
        with self._lock:
            frame, shown = self._frame, self._shown
        info = GaugeMetricFamily("obs_build_info", "obs-tui build and host; always 1",
                                 labels=("version", "host"))
        info.add_metric((__version__, frame.host if frame else ""), 1.0)
        yield info
        if frame is None:
            return
        yield _source_up(frame)
        if frame.red is not None:
            hist = HistogramMetricFamily(
                "http_server_request_duration_seconds",
                "Duration of HTTP server requests, first byte read to first byte written "
                "(eBPF, since obs-tui attached)", labels=HTTP_LABELS)
            for (service, method, route, status), s in sorted(semconv_series(frame.red).items()):
                buckets = [(_le(b), float(n)) for b, n in zip(SEMCONV_BOUNDS_S, s.le_counts)]
                buckets.append(("+Inf", float(s.count)))
                hist.add_metric((service, method, route, str(status)), buckets, s.sum_s)
            yield hist
        if shown.joules is not None:
            joules = CounterMetricFamily("obs_process_cpu_joules",
                                         "CPU energy attributed to a process since obs-tui started "
                                         "(whole joules, updated at most once a second)",
                                         labels=("pid", "comm"))
            for (pid, comm), value in shown.joules.items():
                joules.add_metric((pid, comm), value)
            yield joules
        if shown.zones:
            watts = GaugeMetricFamily("obs_host_power_watts",
                                      "Host power by zone (host: the total); source rapl or estimate",
                                      labels=("zone", "source"))
            for zone, source, value in shown.zones:
                watts.add_metric((zone, source), value)
            yield watts
        if shown.grams is not None:
            grams = CounterMetricFamily("obs_process_carbon_grams",
                                        "Operational carbon of a process since obs-tui started (gCO2e)",
                                        labels=("pid", "comm"))
            for (pid, comm), value in shown.grams.items():
                grams.add_metric((pid, comm), value)
            yield grams
        if shown.grid is not None:
            yield GaugeMetricFamily("obs_grid_intensity_g_per_kwh",
                                    "Grid carbon intensity used (gCO2e per kWh)", value=shown.grid)


def _le(bound: float) -> str:
    return f"{bound:g}" if bound < 1 else f"{bound:.1f}"


def _source_up(frame: Frame) -> GaugeMetricFamily:
    """1 while a source (or a capability without a source of that name: ebpf, rapl, prometheus)
    gives fresh data, 0 while it is off or stale: the same status the console's header shows."""
    up = GaugeMetricFamily("obs_source_up", "1 while the source gives fresh data, 0 while it is "
                           "off or stale", labels=("source",))
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
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="obs-tui"'),
                                                ("Content-Type", "text/plain")])
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


def serve(collector: FrameCollector, listen: str = DEFAULT_LISTEN, tls_cert_file: str = "",
          tls_key_file: str = "", basic_auth_user: str = "", basic_auth_password_file: str = "",
          where: str = "--listen") -> MetricsServer:
    """Serve /metrics in a daemon thread; ExporterError (one line) for bad settings."""
    host, port = parse_listen(listen, where)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    app = make_wsgi_app(registry)
    if basic_auth_user or basic_auth_password_file:
        if not (basic_auth_user and basic_auth_password_file):
            raise ExporterError("exporter: basic auth needs both basic_auth_user and "
                                "basic_auth_password_file")
        app = _with_basic_auth(app, basic_auth_user, _read_password(basic_auth_password_file))
    context = None
    if tls_cert_file or tls_key_file:
        if not (tls_cert_file and tls_key_file):
            raise ExporterError("exporter: TLS needs both tls_cert_file and tls_key_file")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(tls_cert_file, tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ExporterError(f"exporter: cannot load TLS certificate {tls_cert_file} / key "
                                f"{tls_key_file}: {exc}") from None
    try:
        server = make_server(host, port, app, server_class=_Server6 if ":" in host else _Server,
                             handler_class=_QuietHandler)
    except OSError as exc:
        raise ExporterError(f"{where}: cannot listen on {listen}: {exc.strerror or exc}") from None
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    shown = f"[{host}]" if ":" in host else host
    return MetricsServer(server, thread, f"{scheme}://{shown}:{server.server_port}/metrics")


def serve_from_config(collector: FrameCollector, exporter: dict[str, Any], listen: str,
                      where: str) -> MetricsServer:
    return serve(collector, listen, exporter.get("tls_cert_file", ""),
                 exporter.get("tls_key_file", ""), exporter.get("basic_auth_user", ""),
                 exporter.get("basic_auth_password_file", ""), where=where)
