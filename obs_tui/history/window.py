"""Totals over a window of recorded frames, as one `snapshot --json` document. Pure.

A frame belongs to the window [start, end) when the middle of the tick it covers does
(taken_at - duration_s / 2): ticks of an agent aligned to whole seconds then fall wholly
into the second they measured. Counts (requests, errors, aborted, joules, grams, CPU
seconds) are summed over the window's ticks; rates are those sums over the window's length.
Quantiles over the window come from the cumulative latency series (the exporter's semconv
buckets, interpolated as histogram_quantile does); without series (read-only mode) the
largest tick quantile stands in, an upper bound.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from obs_tui.analysis.histogram import SEMCONV_BOUNDS_S
from obs_tui.analysis.prom_red import le_quantile_ms
from obs_tui.history.document import red_totals_of

Doc = dict[str, Any]
QUANTILES = (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))


def middle(taken_at: float, doc: Doc) -> float:
    return taken_at - float(doc.get("duration_s") or 0.0) / 2


def in_window(frames: list[tuple[float, Doc]], start: float, end: float) -> list[tuple[float, Doc]]:
    return [(t, d) for t, d in frames if start <= middle(t, d) < end]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _service_key(svc: Doc) -> Any:
    return svc.get("pid") or svc.get("comm")


def _series_delta(cur: list[Doc], prev: list[Doc] | None) -> dict[tuple, tuple[int, list[int]]]:
    """(method, route, status) -> (count, le_counts) of one tick; a counter that went back
    (the probe restarted) counts from zero."""
    before = {(s["method"], s["route"], s["status"]): s for s in prev or ()}
    out = {}
    for s in cur:
        key = (s["method"], s["route"], s["status"])
        p = before.get(key)
        if p is None or s["count"] < p["count"]:
            if prev is None:
                continue  # no previous tick: what came before the window is unknown
            out[key] = (s["count"], list(s["le_counts"]))
        else:
            out[key] = (s["count"] - p["count"], [a - b for a, b in zip(s["le_counts"], p["le_counts"])])
    return out


class _Latency:
    def __init__(self) -> None:
        self.count = 0
        self.le = [0] * len(SEMCONV_BOUNDS_S)
        self.max = {name: 0.0 for name, _ in QUANTILES}

    def add_series(self, count: int, le: list[int]) -> None:
        self.count += count
        self.le = [a + b for a, b in zip(self.le, le)]

    def add_tick(self, row: Doc) -> None:
        for name, _ in QUANTILES:
            self.max[name] = max(self.max[name], float(row.get(name) or 0.0))

    def quantiles(self, requests: int) -> dict[str, float]:
        if self.count and self.count >= requests:
            pairs = list(zip(SEMCONV_BOUNDS_S, self.le))
            return {name: round(le_quantile_ms(pairs, self.count, q), 3) for name, q in QUANTILES}
        return dict(self.max)


def _add_classes(into: dict[str, int], classes: dict | None) -> None:
    for name, n in (classes or {}).items():
        into[name] = into.get(name, 0) + n


def _red(ticks: list[tuple[Doc, Doc | None]], seconds: float) -> Doc | None:
    last = ticks[-1][0].get("red")
    if last is None:
        return None
    services: dict[Any, Doc] = {}
    latency: dict[tuple, _Latency] = {}
    lost = 0
    for doc, prev in ticks:
        red = doc.get("red")
        if red is None:
            continue
        lost += red.get("lost_events", 0)
        before = (
            {_service_key(s): s for s in (prev or {}).get("red", {}).get("services", ())}
            if prev and prev.get("red")
            else {}
        )
        for svc in red.get("services", ()):
            key = _service_key(svc)
            acc = services.get(key)
            if acc is None:
                acc = services[key] = {
                    **copy.deepcopy(svc),
                    "requests": 0,
                    "errors": 0,
                    "aborted": 0,
                    "status_classes": {},
                    "routes": {},
                }
            acc.update(
                {
                    k: svc[k]
                    for k in ("comm", "ports", "cmdline", "routes_total", "paths", "series")
                    if k in svc
                }
            )
            for k in ("requests", "errors", "aborted"):
                acc[k] += svc.get(k, 0)
            _add_classes(acc["status_classes"], svc.get("status_classes"))
            latency.setdefault((key,), _Latency()).add_tick(svc)
            for route in svc.get("routes", ()):
                rkey = (route["method"], route["route"])
                racc = acc["routes"].get(rkey)
                if racc is None:
                    racc = acc["routes"][rkey] = {
                        **route,
                        "requests": 0,
                        "errors": 0,
                        "aborted": 0,
                        "status_classes": {},
                    }
                for k in ("requests", "errors", "aborted"):
                    racc[k] += route.get(k, 0)
                _add_classes(racc["status_classes"], route.get("status_classes"))
                latency.setdefault((key, *rkey), _Latency()).add_tick(route)
            prev_svc = before.get(key)
            for (method, route, _), (count, le) in _series_delta(
                svc.get("series", []), prev_svc.get("series", []) if prev_svc else None
            ).items():
                latency.setdefault((key,), _Latency()).add_series(count, le)
                latency.setdefault((key, method, route), _Latency()).add_series(count, le)
    out = []
    for key, acc in services.items():
        routes = []
        for rkey, racc in acc["routes"].items():
            racc.update(latency[(key, *rkey)].quantiles(racc["requests"]))
            routes.append(racc)
        acc["routes"] = sorted(routes, key=lambda r: (-r["requests"], r["method"], r["route"]))
        acc.update(latency[(key,)].quantiles(acc["requests"]))
        acc["rps"] = round(acc["requests"] / seconds, 6) if seconds > 0 else 0.0
        acc["error_ratio"] = round(acc["errors"] / acc["requests"], 6) if acc["requests"] else 0.0
        out.append(acc)
    red = {
        **last,
        "lost_events": lost,
        "services": sorted(out, key=lambda s: (-s["requests"], str(s["comm"]))),
    }
    red["totals"] = red_totals_of(red)  # the window's, not its last tick's
    return red


def _weighted(ticks: list[tuple[Doc, Doc | None]], section: str, field: str) -> tuple[float, float]:
    """(sum of value x tick seconds, sum of tick seconds) of a section's field."""
    total = seconds = 0.0
    for doc, _ in ticks:
        sec = doc.get(section)
        if sec is not None:
            dt = float(doc.get("duration_s") or 0.0)
            total += float(sec.get(field) or 0.0) * dt
            seconds += dt
    return total, seconds


def _per_process(
    ticks: list[tuple[Doc, Doc | None]], section: str, rate: str, scale: float, into: str
) -> dict[Any, Doc]:
    """Each process's last row in the window with `into` = sum of rate x tick seconds / scale,
    and the rate averaged over the ticks it was seen in."""
    rows: dict[Any, Doc] = {}
    for doc, _ in ticks:
        sec = doc.get(section)
        dt = float(doc.get("duration_s") or 0.0)
        for p in (sec or {}).get("processes", ()):
            acc = rows.get(p["pid"])
            if acc is None:
                acc = rows[p["pid"]] = {"_sum": 0.0, "_s": 0.0}
            acc.update({k: v for k, v in p.items() if k not in (into, rate)})
            acc["_sum"] += float(p.get(rate) or 0.0) * dt
            acc["_s"] += dt
    for acc in rows.values():
        total, secs = acc.pop("_sum"), acc.pop("_s")
        acc[into] = round(total / scale, 6)
        acc[rate] = round(total / secs, 6) if secs else 0.0
    return rows


def _power(ticks: list[tuple[Doc, Doc | None]]) -> Doc | None:
    last = ticks[-1][0].get("power")
    if last is None:
        return None
    out = dict(last)
    host, seconds = _weighted(ticks, "power", "host_watts")
    idle, _ = _weighted(ticks, "power", "idle_watts")
    out["host_watts"] = round(host / seconds, 6) if seconds else last.get("host_watts", 0.0)
    out["idle_watts"] = round(idle / seconds, 6) if seconds else last.get("idle_watts", 0.0)
    out["host_joules"], out["idle_joules"] = round(host, 6), round(idle, 6)
    rows = _per_process(ticks, "power", "watts", 1.0, "joules")
    cpu: dict[int, float] = {}
    for doc, prev in ticks:  # on-CPU seconds are cumulative in a frame: add up each tick's part
        before = {p["pid"]: p["cpu_seconds"] for p in ((prev or {}).get("power") or {}).get("processes", ())}
        for p in (doc.get("power") or {}).get("processes", ()):
            was = before.get(p["pid"])
            if was is not None and p["cpu_seconds"] >= was:
                cpu[p["pid"]] = cpu.get(p["pid"], 0.0) + p["cpu_seconds"] - was
    for pid, row in rows.items():
        row["cpu_seconds"] = round(cpu.get(pid, 0.0), 6)
        row["share"] = round(row["watts"] / out["host_watts"], 6) if out["host_watts"] else 0.0
    out["processes"] = sorted(rows.values(), key=lambda p: -p["joules"])
    return out


def _carbon(ticks: list[tuple[Doc, Doc | None]], seconds: float, red: Doc | None) -> Doc | None:
    last = ticks[-1][0].get("carbon")
    if last is None:
        return None
    out = dict(last)
    host, secs = _weighted(ticks, "carbon", "host_g_per_h")
    out["host_g_per_h"] = round(host / secs, 6) if secs else last.get("host_g_per_h", 0.0)
    out["host_grams"] = round(host / 3600, 6)
    rows = _per_process(ticks, "carbon", "g_per_h", 3600.0, "grams")
    requests = {s.get("pid"): s["requests"] for s in (red or {}).get("services", ())}
    for pid, row in rows.items():
        n = requests.get(pid)
        row["rps"] = round(n / seconds, 6) if n is not None and seconds else None
        row["g_per_1k_requests"] = round(row["grams"] * 1000 / n, 6) if n else None
    out["processes"] = sorted(rows.values(), key=lambda p: -p["grams"])
    return out


def window_document(
    frames: list[tuple[float, Doc]], before: tuple[float, Doc] | None, start: float, end: float
) -> Doc:
    """One document for the frames of [start, end) (oldest first, at least one); `before`:
    the frame just before them, for the cumulative series and CPU seconds."""
    ticks = []
    prev = before[1] if before is not None else None
    for _, doc in frames:
        ticks.append((doc, prev))
        prev = doc
    last = frames[-1][1]
    seconds = end - start
    red = _red(ticks, seconds)
    out = {
        **last,
        "taken_at": _iso(end),
        "duration_s": round(seconds, 3),
        "red": red,
        "power": _power(ticks),
        "carbon": _carbon(ticks, seconds, red),
        "window": {
            "from": _iso(start),
            "to": _iso(end),
            "frames": len(frames),
            "first_frame": _iso(frames[0][0]),
            "last_frame": _iso(frames[-1][0]),
        },
    }
    return out
