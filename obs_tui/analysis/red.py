"""RED per service and route from two cumulative samples of the probe's counters.

The probe (bpf/red.c) keeps cumulative counts and latency histograms per (tgid, method,
status, path); a window's numbers are cur - prev. On the first tick (prev is None) the
counts are those since the probe attached, and rates are 0 (there is no window to divide by).

Requests are responses seen with a final status (>= 200); errors are 5xx. A connection
closed while its request waited for a response is counted as `aborted`, not as a request.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from obs_tui.analysis import histogram
from obs_tui.analysis.routes import normalise
from obs_tui.model import RedSection, RequestSeries, RouteStats, ServiceStats
from obs_tui.probe_constants import PATHS_MAX
from obs_tui.raw import UNPARSED_METHOD, RedRaw, ServiceInfo, StatEntry, StatKey

UNPARSED_ROUTE = "(request line not parsed)"
# Why the probe could not record something, by its `lost` slot (LOST_* in probe_constants).
LOST_REASONS = (
    "connections table full",
    "counters table full",
    "SSL stash full",
    "request before the previous answer",
    f"paths table full ({PATHS_MAX:,} paths)",
    "responses to requests never seen (no read that began them)",
    "undecoded-connections table full",
    "HTTP/2 events buffer full (header blocks not decoded)",
    "HTTP/2 connections table full",
    "HTTP/2 frames beyond what the probe walks in one call (connection lost)",
)


@dataclass
class _Acc:
    requests: int = 0
    errors: int = 0
    aborted: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    hist: dict[int, int] = field(default_factory=dict)
    grpc: dict[str, int] = field(default_factory=dict)  # grpc-status -> calls

    def add(self, status: int, count: int, hist: Iterable[tuple[int, int]], grpc_status: int = -1) -> None:
        if status == 0:
            self.aborted += count
            return
        self.requests += count
        if 500 <= status <= 599 or grpc_status > 0:
            self.errors += count
        if grpc_status >= 0:
            self.grpc[str(grpc_status)] = self.grpc.get(str(grpc_status), 0) + count
        cls = f"{status // 100}xx" if status >= 100 else "?"  # HTTP/2 status not decoded
        self.classes[cls] = self.classes.get(cls, 0) + count
        for index, n in hist:
            self.hist[index] = self.hist.get(index, 0) + n


def rate(requests: float, seconds: float) -> float:
    """Requests per second over a window, as every RED section states it."""
    return round(requests / seconds, 3) if seconds > 0 else 0.0


def error_ratio(errors: float, requests: float) -> float:
    """Errors over requests, as every RED section states it (0 with no requests)."""
    return round(errors / requests, 6) if requests else 0.0


def _delta(cur: StatEntry, prev: StatEntry | None) -> tuple[int, dict[int, int]]:
    if prev is cur:  # the source hands back the same entry when nothing changed
        return 0, {}
    hist = dict(cur.hist)
    if prev is None or prev.count > cur.count:  # new key, or the key was pruned and reborn
        return cur.count, hist
    return cur.count - prev.count, histogram.subtract(hist, dict(prev.hist))


def _quantiles(hist: dict[int, int]) -> tuple[float, float, float]:
    p50, p95, p99 = (round(histogram.quantile_ms(hist, q), 3) for q in (0.5, 0.95, 0.99))
    return p50, p95, p99


def _routes_of(
    paths: frozenset[str], patterns: tuple[str, ...], max_children: int, truncated: frozenset[str]
) -> dict[str, str]:
    """normalise() for one service's paths (RedAnalysis memoises it)."""
    return normalise(paths, patterns, max_children, truncated=truncated)


def _route_stats(routes: dict[tuple[str, str], _Acc]) -> tuple[RouteStats, ...]:
    return tuple(
        RouteStats(
            method,
            route,
            acc.requests,
            acc.errors,
            *_quantiles(acc.hist),
            aborted=acc.aborted,
            status_classes=tuple(sorted(acc.classes.items())),
            grpc_status=tuple(sorted(acc.grpc.items(), key=lambda kv: int(kv[0]))),
        )
        for (method, route), acc in sorted(routes.items(), key=lambda kv: (-kv[1].requests, kv[0]))
    )


def _protocol(keys: list[StatKey]) -> str:
    """What a service speaks, from the requests counted since the probe attached: "grpc" over
    "h2" over "http/1.1"; "" with none (only undecoded connections)."""
    protos = {k.proto for k in keys}
    for proto in ("grpc", "h2"):
        if proto in protos:
            return proto
    return "http/1.1" if protos else ""


def _series(
    entries: dict[tuple[str, str, int, str], list[StatEntry]], le_of: dict[int, tuple[int, ...]]
) -> tuple[RequestSeries, ...]:
    out = []
    for (method, route, status, scheme), group in sorted(entries.items()):
        le = [0] * len(histogram.SEMCONV_BOUNDS_S)
        for entry in group:
            for i, n in enumerate(le_of[id(entry)]):
                le[i] += n
        out.append(
            RequestSeries(
                method,
                route,
                status,
                sum(e.count for e in group),
                sum(e.sum_ns for e in group) / 1e9,
                tuple(le),
                scheme,
            )
        )
    return tuple(out)


class RedAnalysis:
    """The `red` stage's analysis, with what it remembers from one call to the next of the
    same stream of samples (the pipeline builds one per stage): the `le` counts of the
    entries no request changed, and each service's routes while its paths stay the same."""

    def __init__(self) -> None:
        # id(entry) -> (entry, its `le` counts), for the entries of the last call only. The
        # source hands back the same StatEntry object for an entry no request changed, so most
        # hit; an entry that changed is dropped at the next call. (An lru_cache keyed by the
        # histograms would hold thousands of replaced histograms: memory that only grows.)
        self._le: dict[int, tuple[StatEntry, tuple[int, ...]]] = {}
        # normalising every path is a large part of a tick under traffic, and the set of paths
        # rarely changes between ticks. A few entries per service: a service whose paths churn
        # (a scanner) adds one set of up to PATHS_MAX paths per tick, which is a lot of memory.
        self._routes_of = functools.lru_cache(maxsize=32)(_routes_of)

    def __call__(self, prev: RedRaw | None, cur: RedRaw, dt: float) -> RedSection:
        """Per service: the window's numbers (cur - prev), and per route also the totals since the
        probe attached, so a route that went quiet is still listed on the service's detail screen;
        per (route, status code) the cumulative series the exporter publishes."""
        lost = cur.lost_events - (prev.lost_events if prev and prev.lost_events <= cur.lost_events else 0)
        by_pid: dict[int, list[StatKey]] = {}
        for key in cur.stats:
            by_pid.setdefault(key.pid, []).append(key)
        undecoded: dict[int, list[tuple[str, int, int]]] = {}  # pid -> (kind, window, since attach)
        for (pid, kind), total in sorted(cur.undecoded.items()):
            before = prev.undecoded.get((pid, kind), 0) if prev else 0
            undecoded.setdefault(pid, []).append((kind, total - before if before <= total else total, total))
            by_pid.setdefault(pid, [])  # a server whose connections are all undecoded still has a row
        services: list[ServiceStats] = []
        le_of = self._le_counts(entry for key, entry in cur.stats.items() if key.status)
        for pid, keys in by_pid.items():
            # gRPC routes are their methods, as they are: never cut into {id} or *
            paths = frozenset(k.path for k in keys if k.method != UNPARSED_METHOD and k.proto != "grpc")
            route_of = self._routes_of(
                paths, tuple(cur.patterns), cur.max_children, frozenset(k.path for k in keys if k.truncated)
            )
            svc = _Acc()
            routes: dict[tuple[str, str], _Acc] = {}
            totals: dict[tuple[str, str], _Acc] = {}
            series: dict[tuple[str, str, int, str], list[StatEntry]] = {}
            for key in keys:
                entry = cur.stats[key]
                if key.method == UNPARSED_METHOD:
                    route = (key.method, key.path or UNPARSED_ROUTE)  # HTTP/2 names its own
                elif key.proto == "grpc":
                    route = (key.method, key.path)
                else:
                    route = (key.method, route_of[key.path])
                totals.setdefault(route, _Acc()).add(key.status, entry.count, entry.hist, key.grpc_status)
                if key.status:
                    series.setdefault((*route, key.status, "https" if key.tls else "http"), []).append(entry)
                count, hist = _delta(entry, prev.stats.get(key) if prev else None)
                if count <= 0:
                    continue
                svc.add(key.status, count, hist.items(), key.grpc_status)
                routes.setdefault(route, _Acc()).add(key.status, count, hist.items(), key.grpc_status)
            info = cur.services.get(pid, ServiceInfo("?", "", ()))
            services.extend(
                ServiceStats(
                    pid=pid,
                    comm=info.comm,
                    ports=info.ports,
                    requests=svc.requests,
                    errors=svc.errors,
                    rps=rate(svc.requests, dt),
                    error_ratio=error_ratio(svc.errors, svc.requests),
                    p50_ms=p50,
                    p95_ms=p95,
                    p99_ms=p99,
                    routes=_route_stats(routes),
                    cmdline=info.cmdline,
                    aborted=svc.aborted,
                    status_classes=tuple(sorted(svc.classes.items())),
                    routes_total=_route_stats(totals),
                    series=_series(series, le_of),
                    paths=len(paths),
                    service_name=info.name or info.comm,
                    service_instance_id=str(pid),
                    undecoded=tuple((kind, n) for kind, n, _ in undecoded.get(pid, ()) if n),
                    undecoded_total=tuple((kind, n) for kind, _, n in undecoded.get(pid, ())),
                    undecoded_reason=cur.undecoded_reasons.get(pid, ""),
                    protocol=_protocol(keys),
                )
                for p50, p95, p99 in [_quantiles(svc.hist)]
            )
        services.sort(key=lambda s: (-s.requests, s.pid))
        return RedSection(
            lost_events=max(0, lost),
            services=tuple(services),
            lost_since_attach=cur.lost_events,
            lost_reasons=tuple((why, n) for why, n in zip(LOST_REASONS, cur.lost_by_slot) if n),
        )

    def _le_counts(self, entries: Iterable[StatEntry]) -> dict[int, tuple[int, ...]]:
        memo = {}
        for entry in entries:
            hit = self._le.get(id(entry))
            le = hit[1] if hit is not None and hit[0] is entry else histogram.cumulative_le(tuple(entry.hist))
            memo[id(entry)] = (entry, le)
        self._le = memo
        return {k: v[1] for k, v in memo.items()}


def red_section(prev: RedRaw | None, cur: RedRaw, dt: float) -> RedSection:
    """One pair of samples without a memory of earlier calls (tests, tools): the numbers of
    RedAnalysis, computed afresh."""
    return RedAnalysis()(prev, cur, dt)


def keep_gone(seen: RedRaw | None, cur: RedRaw) -> RedRaw:
    """`cur`, plus the last counters of every key `seen` had and `cur` has not: a process that
    exited and whose counters the source has since forgotten (after a grace period). For a
    window longer than that grace (`snapshot --duration`), so its requests stay in the window."""
    if seen is None:
        return cur
    gone = {key: entry for key, entry in seen.stats.items() if key not in cur.stats}
    if not gone:
        return cur
    return replace(cur, stats={**gone, **cur.stats}, services={**seen.services, **cur.services})
