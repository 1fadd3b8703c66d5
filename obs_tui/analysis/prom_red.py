"""RED per service and route from Prometheus histograms (read-only mode).

The input is what `http_server_request_duration_seconds` holds in Prometheus (obs-tui's own
exporter or Beyla, OpenTelemetry semconv labels): per (instance, service_name, method, route,
status) a cumulative count, sum and `le` bucket counts. The output is the same RedSection the
eBPF probe fills, so the Requests pane and `snapshot --json` read one shape:

- routes_total: the cumulative counts as Prometheus has them (since each exporter started);
- the window (requests, rps, quantiles): the difference between the last two fetches of the
  poller, over the time between them, so rates stay steady between fetches (Prometheus data
  moves once per scrape, not once per console tick); before a second fetch it is the totals;
- quantiles interpolated linearly inside `le` buckets as PromQL's histogram_quantile does,
  so they are exact to one bucket.

A counter that went down (an exporter restarted) starts a new window from zero, as PromQL's
increase() treats a reset.
"""

from __future__ import annotations

from collections.abc import Sequence

from obs_tui.analysis.red import error_ratio, rate
from obs_tui.model import RedSection, RouteStats, ServiceStats
from obs_tui.raw import ALL, PromFetch, PromHist, PromRedRaw


def le_quantile_ms(le: Sequence[tuple[float, float]], count: float, q: float) -> float:
    """histogram_quantile over cumulative (bound, count) pairs; 0.0 without data. A rank beyond
    the last finite bound answers that bound (PromQL's rule for the +Inf bucket)."""
    if count <= 0 or not le:
        return 0.0
    rank = min(max(q, 0.0), 1.0) * count
    lower, below = 0.0, 0.0
    for bound, cumulative in le:
        if cumulative >= rank:
            inside = cumulative - below
            fraction = (rank - below) / inside if inside > 0 else 1.0
            return (lower + (bound - lower) * fraction) * 1000.0
        lower, below = bound, cumulative
    return le[-1][0] * 1000.0


def _select(fetch: PromFetch | None, instance: str) -> dict[tuple[str, str, str, int], PromHist]:
    """The fetch's series for one instance (or all, added up), without the instance label."""
    out: dict[tuple[str, str, str, int], PromHist] = {}
    if fetch is None:
        return out
    for labels, hist in fetch.series.items():
        inst, key = labels[0], labels[1:]
        if instance != ALL and inst != instance:
            continue
        have = out.get(key)
        out[key] = hist if have is None else _add(have, hist)
    return out


def _add(a: PromHist, b: PromHist) -> PromHist:
    if [x for x, _ in a.le] != [x for x, _ in b.le]:  # different layouts: keep the shared bounds
        bounds = dict(b.le)
        return PromHist(
            a.count + b.count, a.sum_s + b.sum_s, tuple((x, n + bounds[x]) for x, n in a.le if x in bounds)
        )
    return PromHist(
        a.count + b.count, a.sum_s + b.sum_s, tuple((x, n + m) for (x, n), (_, m) in zip(a.le, b.le))
    )


def _minus(cur: PromHist, prev: PromHist | None) -> PromHist:
    if prev is None or prev.count > cur.count or [x for x, _ in prev.le] != [x for x, _ in cur.le]:
        return cur
    return PromHist(
        cur.count - prev.count,
        cur.sum_s - prev.sum_s,
        tuple((x, max(n - m, 0.0)) for (x, n), (_, m) in zip(cur.le, prev.le)),
    )


class _Acc:
    def __init__(self) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.classes: dict[str, float] = {}
        self.hist: PromHist | None = None

    def add(self, status: int, hist: PromHist) -> None:
        self.requests += hist.count
        if 500 <= status <= 599:
            self.errors += hist.count
        cls = f"{status // 100}xx"
        self.classes[cls] = self.classes.get(cls, 0.0) + hist.count
        self.hist = hist if self.hist is None else _add(self.hist, hist)

    def quantiles(self) -> tuple[float, float, float]:
        if self.hist is None:
            return 0.0, 0.0, 0.0
        hist = self.hist
        p50, p95, p99 = (round(le_quantile_ms(hist.le, hist.count, q), 3) for q in (0.5, 0.95, 0.99))
        return p50, p95, p99


def _route_stats(routes: dict[tuple[str, str], _Acc]) -> tuple[RouteStats, ...]:
    return tuple(
        RouteStats(
            method,
            route,
            round(acc.requests),
            round(acc.errors),
            *acc.quantiles(),
            status_classes=tuple(sorted((c, round(n)) for c, n in acc.classes.items())),
        )
        for (method, route), acc in sorted(routes.items(), key=lambda kv: (-kv[1].requests, kv[0]))
    )


def prom_red_section(prev: PromRedRaw | None, cur: PromRedRaw, dt: float) -> RedSection:
    """prev and dt (the engine's) are unused: the window is the raw's own pair of fetches."""
    latest = _select(cur.latest, cur.instance)
    before = _select(cur.before, cur.instance)
    window = (cur.latest.at - cur.before.at) if cur.before is not None else 0.0
    by_service: dict[str, list[tuple[str, str, int]]] = {}
    for service, method, route, status in latest:
        by_service.setdefault(service, []).append((method, route, status))
    services = []
    where = "all instances" if cur.instance == ALL else cur.instance
    for service, keys in by_service.items():
        svc = _Acc()
        routes: dict[tuple[str, str], _Acc] = {}
        totals: dict[tuple[str, str], _Acc] = {}
        for method, route, status in keys:
            total = latest[(service, method, route, status)]
            totals.setdefault((method, route), _Acc()).add(status, total)
            part = (
                _minus(total, before.get((service, method, route, status)))
                if cur.before is not None
                else total
            )
            if part.count > 0:
                svc.add(status, part)
                routes.setdefault((method, route), _Acc()).add(status, part)
        p50, p95, p99 = svc.quantiles()
        services.append(
            ServiceStats(
                pid=0,
                comm=service,
                service_name=service,
                ports=(),
                requests=round(svc.requests),
                errors=round(svc.errors),
                rps=rate(svc.requests, window),
                error_ratio=error_ratio(svc.errors, svc.requests),
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                routes=_route_stats(routes),
                cmdline=f"from Prometheus ({where})",
                status_classes=tuple(sorted((c, round(n)) for c, n in svc.classes.items())),
                routes_total=_route_stats(totals),
            )
        )
    services.sort(key=lambda s: (-s.requests, s.comm))
    return RedSection(lost_events=0, services=tuple(services))
