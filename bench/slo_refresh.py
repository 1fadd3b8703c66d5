"""What one SLO refresh costs: wall time and HTTP requests for 20 SLOs against a local Prometheus.

    .venv/bin/python bench/slo_refresh.py [--slos 20] [--rounds 10]

A real Prometheus (Debian's) is started on a temp dir holding a month of history for each SLO
(written by promtool, as in the tests). Three ways to read every window (5m … 3d and the 30 d
period) of every SLO are timed in the same run:
- obs-tui: SloSource's worker round: one instant query per SLO (all windows in one PromQL),
  POOL requests at a time;
- the same queries one after another (what the pool buys);
- the naive baseline: one request per window and per side (errors, total), one at a time.
Figures are the median and the worst of `--rounds` refreshes after a warm-up round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from obs_tui.config import parse
from obs_tui.sources import slo_specs
from obs_tui.sources.prometheus import Client
from obs_tui.sources.slo import POOL, SloSource
from tests import slo_history as h
from tests.prometheus_server import prometheus


def config_text(url: str, n: int) -> str:
    out = [f'[prometheus]\nurl = "{url}"\ntimeout_s = 10\n']
    for i in range(n):
        out.append(f"""[[slo]]
name = "svc-{i}"
objective = 0.999
error_query = 'sum(rate(http_requests_total{{job="svc-{i}",code="500"}}[{{{{.window}}}}]))'
total_query = 'sum(rate(http_requests_total{{job="svc-{i}"}}[{{{{.window}}}}]))'
""")
    return "".join(out)


def timed(fn, client: Client, rounds: int) -> tuple[float, float, float]:
    """(median s, worst s, requests per round) after one warm-up round."""
    fn()
    times = []
    before = client.requests
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times), (client.requests - before) / rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/slo_refresh.py")
    parser.add_argument("--slos", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    scenarios = [
        h.Scenario(f"svc-{i}", h.profile(5 + i, (3600, 40 + 10 * i), (300, 3 * i))) for i in range(args.slos)
    ]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        data = h.write_blocks(h.openmetrics(scenarios), tmp)
        print(f"history: {args.slos} SLOs x 2 series, promtool {time.perf_counter() - started:.1f} s")
        with prometheus(tmp, data_dir=data, scrape_self=False) as url:
            config = parse(config_text(url, args.slos))
            specs = slo_specs.load_all(config)
            source = SloSource(
                Client.from_config(config.prometheus), specs, discover=False, clock=lambda: h.END
            )
            source.wait_ready(60)
            source.poller.close()  # rounds are driven by the bench from here on
            client = source.client
            assert client is not None

            def ours() -> None:
                source._spark_at = h.END  # the sparkline range query is every 5 min, not per round
                source._round(client)

            def sequential() -> None:
                for spec in specs:
                    client.query(slo_specs.window_query(spec), h.END)

            def naive() -> None:
                for spec in specs:
                    for window in spec.windows:
                        client.query(slo_specs.fill(spec.error_query, window), h.END)
                        client.query(slo_specs.fill(spec.total_query, window), h.END)

            burns = {r.name: dict(r.errors) for r in source._published}
            assert all(burns.values()), "every SLO answered"
            print(f"{'approach':<44} {'median':>8} {'worst':>8} {'requests':>9}")
            for label, fn in (
                (f"obs-tui: one query per SLO, pool of {POOL}", ours),
                ("one query per SLO, one at a time", sequential),
                ("baseline: one query per window and side", naive),
            ):
                med, worst, reqs = timed(fn, client, args.rounds)
                print(f"{label:<44} {med * 1000:>6.0f}ms {worst * 1000:>6.0f}ms {reqs:>9.0f}")
            source.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
