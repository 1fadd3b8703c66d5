"""The round trip: real traffic -> the agent's probes -> a real Prometheus scraping the agent ->
`obs-tui snapshot --json --read-only --prometheus URL` shows the same request counts as local
mode (`snapshot --json` with its own probes, over the same traffic), and latency quantiles
within one histogram bucket (the semconv buckets are all Prometheus has)."""

from __future__ import annotations

import bisect
import json
import os
import subprocess
import threading
import time

import pytest

from obs_tui.analysis.histogram import SEMCONV_BOUNDS_S
from obs_tui.sources.prometheus import Client
from tests import servers
from tests.prometheus_server import prometheus
from tests.test_exporter import agent, http_series, scrape, wait_for
from tests.test_red_probes import keepalive

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the probes need root")

NAME = "rt-api"
TRAFFIC = (
    ["/users/1", "/users/2", "/users/3"] * 10 + ["/sleep/20"] * 6 + ["/sleep/120"] * 3 + ["/status/503"] * 4
)
EXPECTED = {("GET", "/users/{id}"): (30, 0), ("GET", "/sleep/{id}"): (9, 0), ("GET", "/status/{id}"): (4, 4)}
CONFIG = '[red]\nroutes = ["/users/{id}"]\n'


def _bucket(ms: float) -> int:
    return bisect.bisect_left(SEMCONV_BOUNDS_S, ms / 1000)


def _routes(doc: dict) -> dict:
    out = {}
    for svc in doc["red"]["services"]:
        if svc["service_name"] == NAME:
            for r in svc["routes_total"]:
                out[(r["method"], r["route"])] = r
    return out


def test_agent_prometheus_read_only_round_trip(tmp_path):
    conf = tmp_path / "local.toml"
    conf.write_text(CONFIG)
    stop_warmup = threading.Event()
    with servers.python_server(tmp_path, name=NAME, service=NAME) as api:
        # Local mode: a snapshot whose window spans all the traffic below.
        local = subprocess.Popen(
            servers.obs_tui_command("--config", str(conf), "snapshot", "--json", "--duration", "25"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with agent(tmp_path, config=CONFIG) as (metrics_url, _):
                target = metrics_url.removeprefix("http://").removesuffix("/metrics")

                def warmup():  # until both probes are attached: /health is not compared
                    while not stop_warmup.is_set():
                        keepalive(api.port, ["/health"])
                        stop_warmup.wait(0.2)

                threading.Thread(target=warmup, daemon=True).start()
                assert wait_for(
                    lambda: ("GET", "/health", "200") in http_series(scrape(metrics_url), NAME), timeout=30
                ), "the agent never saw the warm-up requests"
                time.sleep(3)  # the local snapshot started first; give its probe the same margin
                stop_warmup.set()
                keepalive(api.port, TRAFFIC)
                (tmp_path / "prom").mkdir()
                with prometheus(tmp_path / "prom", targets=(target,)) as url:
                    client = Client(url)
                    total = len(TRAFFIC)

                    def scraped():
                        rows = client.query(
                            f"sum(http_server_request_duration_seconds_count"
                            f'{{service_name="{NAME}",http_route!="/health"}})'
                        )
                        return rows and float(rows[0]["value"][1]) == total

                    assert wait_for(scraped, timeout=40), "Prometheus never scraped the traffic"
                    # power per process is a rate of the agent's joules: two scrapes of them
                    assert wait_for(
                        lambda: client.query("rate(obs_process_cpu_joules_total[1m])"), timeout=20
                    )
                    agent_zones = {
                        r["metric"]["zone"]: float(r["value"][1])
                        for r in client.query("obs_host_zone_power_watts")
                    }
                    client.close()
                    ro = servers.run_obs_tui(
                        "snapshot", "--json", "--read-only", "--prometheus", url, "--duration", "0.2"
                    )
                    assert ro.returncode == 0, ro.stderr
            out, err = local.communicate(timeout=60)
            assert local.returncode == 0, err
        finally:
            if local.poll() is None:
                local.kill()
                local.wait()

    local_routes = _routes(json.loads(out))
    ro_routes = _routes(json.loads(ro.stdout))
    for key, (requests, errors) in EXPECTED.items():
        lo, re_ = local_routes[key], ro_routes[key]
        assert (lo["requests"], lo["errors"]) == (requests, errors), (key, lo)
        assert (re_["requests"], re_["errors"]) == (requests, errors), (key, re_)
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            assert abs(_bucket(lo[q]) - _bucket(re_[q])) <= 1, (key, q, lo[q], re_[q])
            b = _bucket(lo[q])
            lower = SEMCONV_BOUNDS_S[b - 1] * 1000 if b > 0 else 0.0
            upper = SEMCONV_BOUNDS_S[min(b, len(SEMCONV_BOUNDS_S) - 1)] * 1000
            assert abs(lo[q] - re_[q]) <= upper - lower, (key, q, lo[q], re_[q])
    power = json.loads(ro.stdout)["power"]  # read-only power from the agent's obs_* metrics
    assert power["source"] == "obs-tui" and power["processes"]
    assert set(power["zones"]) == set(agent_zones)
    assert power["host_watts"] > 0
    sleep = ro_routes[("GET", "/sleep/{id}")]
    assert 10 < sleep["p50_ms"] <= 25 and 100 < sleep["p99_ms"] <= 250  # 20 ms and 120 ms requests
