"""Pane 2: Requests (RED: rate, errors, duration) per service, from the eBPF source."""

from __future__ import annotations

from collections.abc import Hashable

from obs_tui.model import Frame, ServiceStats
from obs_tui.tui import fmt
from obs_tui.tui.fmt import escape
from obs_tui.tui.panes.base import Chart, DetailSpec, Pane, source_reason, tone_for
from obs_tui.tui.panes.carbon import per_request
from obs_tui.tui.table import Cell, Column

SPARK = 10
# The protocol a service's requests came in (ServiceStats.protocol), as its row says it.
PROTOCOL_TAG = {"http/1.1": "h1", "h2": "h2", "grpc": "grpc"}
# Connections the probe sees but cannot decode (analysis.red UNDECODED_KINDS): the row's marker
# and, on the detail screen, why their requests are not counted.
UNDECODED_MARK = {"tls": "tls", "http2": "h2"}
UNDECODED_WHY = {
    "tls": (
        "TLS connection",
        "encrypted by TLS code obs-tui does not trace (not OpenSSL, BoringSSL or Go's "
        "crypto/tls with symbols: Java, rustls, a stripped Go binary, a static binary)",
    ),
    "http2": (
        "HTTP/2 connection",
        "HTTP/2 the probe could not follow (its HTTP/2 connections table was full)",
    ),
}


def undecoded_marker(s: ServiceStats) -> str:
    """ "?tls", "?h2", "?tls+h2": this service has connections whose requests are not counted."""
    kinds = [UNDECODED_MARK.get(kind, kind) for kind, n in s.undecoded_total if n]
    return "?" + "+".join(kinds) if kinds else ""


def _undecoded_count(kind: str, n: int) -> str:
    noun = UNDECODED_WHY.get(kind, (f"{kind} connection", ""))[0]
    return f"{fmt.count(n)} {noun}{'' if n == 1 else 's'}"


def undecoded_counts(s: ServiceStats) -> str:
    """How many connections of a service are not decoded, for its detail screen's fields."""
    return ", ".join(_undecoded_count(kind, n) for kind, n in s.undecoded_total)


def undecoded_lines(s: ServiceStats) -> str:
    """What cannot be seen of a service and why, for its detail screen's note (full width:
    the reason is a sentence)."""
    parts = []
    for kind, n in s.undecoded_total:
        why = UNDECODED_WHY.get(kind, ("", "not decoded"))[1]
        if kind == "tls" and s.undecoded_reason:
            why = s.undecoded_reason  # what the probe found in this server's binaries
        parts.append(f"{_undecoded_count(kind, n)}: {why}")
    return "Not decoded: " + "; ".join(parts) + "; their requests are not counted" if parts else ""


def undecoded_legend(services) -> str:
    """The pane's one line about the markers shown, "" when there are none."""
    marks = sorted({undecoded_marker(s) for s in services} - {""})
    return f"{' '.join(marks)}: connections obs-tui cannot decode; requests not counted" if marks else ""


def how_to_fix(reason: str, read_only: bool) -> str:
    low = reason.lower()
    if read_only:
        return (
            "read-only mode fills this pane from Prometheus (http_server_request_duration_seconds "
            "from `obs-tui agent` or Beyla): give --prometheus URL"
        )
    if any(w in low for w in ("root", "permission", "privilege", "cap_bpf", "eperm")):
        return "run as root: sudo obs-tui · obs-tui doctor for details"
    return "obs-tui doctor for details"


class RequestsPane(Pane):
    NUMBER = 2
    TITLE = "Requests (RED) per service"
    COLUMNS = [
        Column("comm", "SERVICE", 9, align="left", flex=True, priority=9, ident=True),
        Column("pid", "PID", 7, priority=6, ident=True),
        Column("ports", "PORTS", 6, align="left", priority=4, ident=True),
        Column("proto", "PROTO", 5, align="left", priority=6, ident=True),
        Column("rps", "RPS", 6, priority=9),
        Column("d_rps", "ΔRPS", 7, priority=7),
        Column("err", "ERR%", 6, priority=9),
        Column("d_err", "ΔERR%", 6, priority=7),
        Column("p50", "P50", 7, priority=3),
        Column("p95", "P95", 7, priority=2),
        Column("p99", "P99", 7, priority=8),
        Column("d_p99", "ΔP99", 7, priority=7),
        Column("trend", "RPS trend", SPARK, align="left", priority=5),
    ]
    CHANGES = {"d_rps": 0, "d_err": 1, "d_p99": 2}
    SORTS = {
        "comm": (lambda s: s.name.lower(), False),
        "pid": (lambda s: s.pid, False),
        "proto": (lambda s: s.protocol, False),
        "rps": (lambda s: (s.rps, s.requests), True),
        "err": (lambda s: s.error_ratio, True),
        "p50": (lambda s: s.p50_ms, True),
        "p95": (lambda s: s.p95_ms, True),
        "p99": (lambda s: s.p99_ms, True),
    }
    DEFAULT_SORT = "rps"

    DEFAULT_CSS = """
    RequestsPane { }
    """

    def adapt(self, frame: Frame) -> None:
        if frame.red is None:
            return
        # Read-only mode's services come from Prometheus by name: no pid, no ports to show.
        remote = bool(frame.red.services) and all(s.pid == 0 for s in frame.red.services)
        self.hide(frozenset({"pid", "ports", "proto"}) if remote else frozenset())

    def items(self, frame: Frame) -> list[ServiceStats] | None:
        if frame.red is None:
            return None
        return list(frame.red.services)

    def key(self, item: ServiceStats) -> Hashable:
        return item.key

    def text(self, item: ServiceStats) -> str:
        ports = " ".join(str(p) for p in item.ports)
        return f"{item.pid} {item.name} {item.comm} {ports} {item.protocol} {item.cmdline} {undecoded_marker(item)}"

    def cells(self, s: ServiceStats) -> tuple:
        err = 100.0 * s.error_ratio
        ports = ",".join(str(p) for p in s.ports) or fmt.DASH
        mark = undecoded_marker(s)
        return (
            # first: a long name is cut at its end, and the mark must stay in sight
            (f"{mark} {s.name}", "warn") if mark else s.name,
            str(s.pid) if s.pid > 0 else fmt.DASH,  # read-only mode: services have no pid
            ports,
            (PROTOCOL_TAG.get(s.protocol, fmt.DASH), "muted" if s.protocol == "http/1.1" else ""),
            fmt.num(s.rps),
            self.change_cell(s, "d_rps"),
            (fmt.pct(err), tone_for(err, 1.0, 5.0)) if s.requests else (fmt.DASH, "muted"),
            self.change_cell(s, "d_err"),
            fmt.ms(s.p50_ms) if s.requests else fmt.DASH,
            fmt.ms(s.p95_ms) if s.requests else fmt.DASH,
            fmt.ms(s.p99_ms) if s.requests else fmt.DASH,
            self.change_cell(s, "d_p99"),
            (self.spark("rps", s.key, SPARK, 1.0), "spark"),
        )

    def _red_reason(self, frame: Frame) -> tuple[str, str]:
        mode, reason = source_reason(frame, "red", "ebpf")
        if not reason and frame.source("red") is None:
            reason = "the eBPF RED source is not running"
        return mode, reason

    def summary(self, frame: Frame, items: list | None) -> str:
        if frame.red is None:
            _, reason = self._red_reason(frame)
            return f"[$text-muted]off —[/] {escape(fmt.first_clause(reason))}"
        totals = frame.red.totals
        count = len(frame.red.services)
        noun = "service" if count == 1 else "services"
        text = f"{count} {noun}"
        if totals is not None:  # derived with every Frame (analysis/derived.py)
            text += f" · {fmt.num(totals.rps)} rps · err {fmt.pct(100.0 * totals.error_ratio)}"
        if frame.red.lost_events:
            text += f" · [$warning]lost {fmt.count(frame.red.lost_events)} events[/]"
        elif frame.red.lost_since_attach:  # counts were lossy earlier: still worth knowing
            text += f" · [$warning]{fmt.count(frame.red.lost_since_attach)} lost since start[/]"
        return text

    def notice(self, frame: Frame) -> tuple[str, bool]:
        status = frame.source("red")
        if frame.red is None:
            mode, reason = self._red_reason(frame)
            fix = how_to_fix(reason, getattr(self.app, "read_only", False))
            return escape(fix), True
        if status is not None and status.stale:
            return f"requests: stale — {escape(status.reason)}", False
        if status is not None and status.reason:  # live, but in part (an attach that failed)
            return f"requests: {escape(status.reason)}", False
        if frame.red.lost_reasons:
            why = ", ".join(f"{fmt.count(n)} {reason}" for reason, n in frame.red.lost_reasons)
            return f"requests: not all seen since start: {escape(why)}", False
        legend = undecoded_legend(frame.red.services)
        if legend:
            return legend, False
        if not frame.red.services:
            if getattr(self.app, "read_only", False):
                return (
                    "no http_server_request_duration_seconds series in Prometheus"
                    + (f" for {escape(frame.instance)}" if frame.instance else "")
                ), True
            return "no HTTP servers seen yet: requests appear as soon as one answers", True
        return "", False

    def detail(self, key: Hashable) -> DetailSpec | None:
        frame, h = self.frame, self.history
        if frame is None or h is None or frame.red is None:
            return None
        s = next((x for x in frame.red.services if x.key == key), None)
        if s is None:
            return None
        fields = [
            ("service", s.name),
            *([("process", s.comm)] if s.name != s.comm else []),
            ("PID", str(s.pid) if s.pid > 0 else fmt.DASH),
            ("ports", ", ".join(str(p) for p in s.ports) or fmt.DASH),
            ("protocol", s.protocol or fmt.DASH),
            ("cmdline", s.cmdline or fmt.DASH),
            ("requests", fmt.count(s.requests)),
            (
                "errors (5xx, grpc-status ≠ 0)" if s.protocol == "grpc" else "errors (5xx)",
                fmt.count(s.errors),
            ),
            ("rate", f"{fmt.num(s.rps)} rps"),
            ("error ratio", fmt.ratio_pct(s.error_ratio, 2)),
            ("p50 / p95 / p99", f"{fmt.ms(s.p50_ms)} / {fmt.ms(s.p95_ms)} / {fmt.ms(s.p99_ms)}"),
            ("window", f"{frame.duration_s:.1f}s"),
            # the cardinality cap at work: where thousands of paths went
            ("paths → routes", f"{fmt.count(s.paths)} → {fmt.count(len(s.routes_total))}"),
        ]
        if s.undecoded_total:
            fields.append(("not decoded", undecoded_counts(s) + " (below)"))
        if frame.carbon is not None:
            jreq, g1k = per_request(frame.carbon, s.pid)
            fields += [("energy per request", jreq), ("CO2e per 1,000 requests", g1k)]
        charts = [
            Chart("requests/s", list(h.get("rps", key)), fmt.num),
            Chart("p99 latency", list(h.get("p99", key)), fmt.ms),
            Chart("errors %", list(h.get("err", key)), fmt.pct),
        ]
        columns = [
            Column("method", "METHOD", 6, align="left", priority=9, ident=True),
            Column("route", "ROUTE", 12, align="left", flex=True, priority=9, ident=True),
            Column("rps", "RPS", 6, priority=8),
            Column("req", "REQ", 7, priority=9),
            Column("err", "ERR", 6, priority=7),
            Column("p50", "P50", 7, priority=5),
            Column("p95", "P95", 7, priority=4),
            Column("p99", "P99", 7, priority=8),
        ]
        # Routes since obs-tui started (a quiet route stays listed), with this window's rate.
        now = {(r.method, r.route): r.requests for r in s.routes}
        window = frame.duration_s
        rows: list[tuple[Hashable, tuple[Cell, ...]]] = [
            (
                (r.method, r.route),
                (
                    r.method,
                    r.route,
                    fmt.num(now.get((r.method, r.route), 0) / window) if window > 0 else fmt.DASH,
                    fmt.count(r.requests),
                    (fmt.count(r.errors), "error" if r.errors else ""),
                    fmt.ms(r.p50_ms),
                    fmt.ms(r.p95_ms),
                    fmt.ms(r.p99_ms),
                ),
            )
            for r in s.routes_total
        ]
        title = f"Service {s.name} (pid {s.pid})" if s.pid > 0 else f"Service {s.name}"
        return DetailSpec(
            title,
            fields,
            charts,
            table_title=f"Routes since start ({len(s.routes_total)}): totals, "
            "latency over all their requests, RPS now",
            columns=columns,
            rows=rows,
            note=". ".join(
                filter(None, ["" if s.routes_total else "no requests seen yet", undecoded_lines(s)])
            ),
        )
