"""What a scrape of `obs-tui agent` costs, beside prometheus_client's own metrics in the same run.

    .venv/bin/python bench/exporter_scrape.py [--services 10] [--routes 20] [--processes 375]

A frame like a busy host's: S services x R routes x 3 status codes (semconv histograms of 14
buckets) and P processes with power and carbon (the exporter publishes the top 20). The obs-tui
row renders it with FrameCollector (families built from the Frame on each scrape); the baseline
renders the same series from prometheus_client's own Histogram/Counter/Gauge objects, which is
what an application instrumented directly would pay. Also timed: the RED analysis of one tick
with those series (the semconv `le` counts are computed there, memoised per probe entry), and
the derivation every tick adds (analysis/derived.py: the series as /metrics labels them, the
processes joined with their power), which a scrape then only renders.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from obs_tui.analysis import histogram
from obs_tui.analysis.derived import derive
from obs_tui.analysis.red import RedAnalysis, red_section
from obs_tui.exporter import HTTP_LABELS, FrameCollector
from obs_tui.model import Frame, PowerSection, ProcessPower
from obs_tui.raw import RedRaw, ServiceInfo, StatEntry, StatKey


def raw(services: int, routes: int, rng: random.Random) -> RedRaw:
    stats = {}
    for s in range(services):
        for r in range(routes):
            for status in (200, 404, 503):
                hist: dict[int, int] = {}
                for _ in range(200):
                    b = histogram.bucket_of(int(rng.lognormvariate(15.5, 1.0)))
                    hist[b] = hist.get(b, 0) + 1
                stats[StatKey(1000 + s, "GET", status, f"/svc{s}/route{r}")] = StatEntry(
                    200, 200 * 5_000_000, tuple(sorted(hist.items()))
                )
    info = {1000 + s: ServiceInfo(f"svc{s}", "", (8000 + s,)) for s in range(services)}
    return RedRaw(0, stats, info, max_children=routes + 1)


def timed(fn, rounds: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), max(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--routes", type=int, default=20)
    parser.add_argument("--processes", type=int, default=375)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    sample = raw(args.services, args.routes, rng)
    red = red_section(None, sample, 0.0)
    procs = tuple(
        ProcessPower(p, f"proc{p}", 1.0, rng.random(), rng.random() * 1000, 0.0)
        for p in range(1, args.processes + 1)
    )
    power = PowerSection("estimate", 20.0, 10.0, (("cpu", 8.0), ("memory", 12.0)), procs)
    bare_frame = Frame("bench", time.time(), 1.0, 100.0, 1.0, (), (), red=red, power=power)
    frame = derive(bare_frame)

    collector = FrameCollector(top_processes=20)
    collector.publish(frame)
    ours = CollectorRegistry(auto_describe=False)
    ours.register(collector)

    native = CollectorRegistry()
    hist = Histogram(
        "http_server_request_duration_seconds",
        "x",
        HTTP_LABELS,
        buckets=histogram.SEMCONV_BOUNDS_S,
        registry=native,
    )
    for svc in red.services:
        for s in svc.series:
            h = hist.labels(svc.name, svc.service_instance_id, s.scheme, s.method, s.route, str(s.status))
            h.observe(0.01)  # the series exist with their buckets; values do not change the cost
    joules = Counter("obs_process_cpu_joules", "x", ("pid", "comm"), registry=native)
    for p in sorted(procs, key=lambda p: -p.joules)[:20]:
        joules.labels(str(p.pid), p.comm).inc(p.joules)
    watts = Gauge("obs_host_power_watts", "x", ("zone", "source"), registry=native)
    for zone, w in power.zones:
        watts.labels(zone, "estimate").set(w)

    series = sum(len(s.series) for s in red.services)
    body = generate_latest(ours)
    print(
        f"# {args.services} services x {args.routes} routes x 3 statuses = {series} histograms, "
        f"{args.processes} processes (top 20 published); {len(body) / 1024:.0f} KiB per scrape; "
        f"median and worst of {args.rounds}"
    )
    base = timed(lambda: generate_latest(native), args.rounds)
    mine = timed(lambda: generate_latest(ours), args.rounds)
    analyse = RedAnalysis()  # as the engine's stage runs it, remembering between ticks
    tick = timed(lambda: analyse(sample, sample, 1.0), args.rounds)
    import obs_tui.analysis.red as red_module

    keep = red_module._series
    red_module._series = lambda *args: ()  # the same analysis without the exporter's series
    bare = timed(lambda: analyse(sample, sample, 1.0), args.rounds)
    red_module._series = keep
    derived = timed(lambda: derive(bare_frame), args.rounds)
    print(
        f"baseline: prometheus_client's own metrics   {base[0] * 1e3:7.2f} ms  worst {base[1] * 1e3:7.2f} ms"
    )
    print(
        f"obs-tui FrameCollector (from the Frame)      {mine[0] * 1e3:7.2f} ms  worst {mine[1] * 1e3:7.2f} ms"
        f"   ({mine[0] / base[0]:.2f}x baseline)"
    )
    print(
        f"baseline: RED analysis without the series  {bare[0] * 1e3:7.2f} ms  worst {bare[1] * 1e3:7.2f} ms"
    )
    print(
        f"RED analysis of one tick with the series     {tick[0] * 1e3:7.2f} ms  worst {tick[1] * 1e3:7.2f} ms"
        f"   (+{(tick[0] - bare[0]) * 1e3:.2f} ms)"
    )
    print(
        f"derive: what a tick reads across sections   {derived[0] * 1e3:7.2f} ms  worst {derived[1] * 1e3:7.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
