"""Read-only mode against a real Prometheus scraping real HTTP targets.

Kepler, Scaphandre and Beyla cannot run here (no RAPL, no kernel for them), so three small
HTTP targets serve their metrics as those exporters name and label them, and the real
Prometheus scrapes them. What is checked: the sources turn them into the Frame's RED and power
sections (quantiles equal to Prometheus's own histogram_quantile), the instance selector
switches hosts, only read requests reach Prometheus (through a recording proxy), and
`snapshot --read-only` as user nobody writes no file.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from obs_tui.analysis.prom_red import prom_red_section
from obs_tui.config import parse
from obs_tui.engine import Engine
from obs_tui.pipeline import stages
from obs_tui.raw import ALL, PromFetch, PromHist, PromRedRaw
from obs_tui.sources.prometheus import Client
from obs_tui.sources.readonly import PromPowerSource, PromRedSource
from tests.fault_proxy import FaultProxy
from tests.prometheus_server import prometheus
from tests.servers import free_port

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def histogram(
    service: str, method: str, route: str, status: int, le_counts: list[int], total: int, sum_s: float
) -> str:
    labels = (
        f'service_name="{service}",http_request_method="{method}",http_route="{route}",'
        f'http_response_status_code="{status}"'
    )
    name = "http_server_request_duration_seconds"
    lines = [f'{name}_bucket{{{labels},le="{b}"}} {n}' for b, n in zip(BOUNDS, le_counts)]
    lines += [
        f'{name}_bucket{{{labels},le="+Inf"}} {total}',
        f"{name}_count{{{labels}}} {total}",
        f"{name}_sum{{{labels}}} {sum_s}",
    ]
    return "\n".join(lines) + "\n"


HTTP_TYPE = "# TYPE http_server_request_duration_seconds histogram\n"
# Host A: Beyla-style histograms and Kepler power.
HOST_A = (
    HTTP_TYPE
    + histogram(
        "checkout",
        "POST",
        "/checkout",
        200,
        [10, 30, 80, 95, 97, 98, 100, 100, 100, 100, 100, 100, 100, 100],
        100,
        2.1,
    )
    + histogram("checkout", "POST", "/checkout", 503, [0, 0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5], 5, 0.4)
    + histogram(
        "search", "GET", "/search", 200, [40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40], 40, 0.1
    )
    + """# TYPE kepler_process_cpu_watts gauge
kepler_process_cpu_watts{pid="101",comm="nginx",zone="package"} 3.5
kepler_process_cpu_watts{pid="101",comm="nginx",zone="dram"} 0.5
kepler_process_cpu_watts{pid="202",comm="postgres",zone="package"} 2
# TYPE kepler_container_cpu_watts gauge
kepler_container_cpu_watts{container_name="redis",container_id="abc",zone="package"} 1.25
# TYPE kepler_node_cpu_watts gauge
kepler_node_cpu_watts{zone="package"} 20
kepler_node_cpu_watts{zone="dram"} 4
"""
)
# Host B: the same service with other numbers, and Kepler too.
HOST_B = (
    HTTP_TYPE
    + histogram(
        "checkout", "POST", "/checkout", 200, [0, 0, 0, 0, 0, 10, 20, 20, 20, 20, 20, 20, 20, 20], 20, 3.0
    )
    + """# TYPE kepler_process_cpu_watts gauge
kepler_process_cpu_watts{pid="101",comm="java",zone="package"} 9
# TYPE kepler_node_cpu_watts gauge
kepler_node_cpu_watts{zone="package"} 30
"""
)
# Host C: Scaphandre.
HOST_C = """# TYPE scaph_host_power_microwatts gauge
scaph_host_power_microwatts 31500000
# TYPE scaph_process_power_consumption_microwatts gauge
scaph_process_power_consumption_microwatts{pid="303",exe="java",cmdline="java -jar app.jar"} 7500000
scaph_process_power_consumption_microwatts{pid="304",exe="python3",cmdline="python3 x.py"} 500000
"""


@contextlib.contextmanager
def static_target(text: str):
    body = text.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A real Prometheus scraping hosts A, B and C; yields (url, {"A": instance, ...})."""
    tmp = tmp_path_factory.mktemp("fleet")
    with (
        static_target(HOST_A) as a,
        static_target(HOST_B) as b,
        static_target(HOST_C) as c,
        prometheus(tmp, targets=(a, b, c)) as url,
    ):
        client = Client(url)
        deadline = time.monotonic() + 40
        while len(client.query('up{job="obs-tui"} == 1')) < 3:  # first scrapes come ~5 s late
            assert time.monotonic() < deadline, "Prometheus did not scrape the targets"
            time.sleep(0.25)
        client.close()
        yield url, {"A": a, "B": b, "C": c}


@contextlib.contextmanager
def engine_over(source, instance=ALL):
    engine = Engine(stages([source]), interval=1.0)
    try:
        engine.select_instance(instance)
        source.wait_fresh(10)
        yield engine
    finally:
        engine.close()


def promql_quantile(url: str, q: float, selector: str) -> float:
    client = Client(url)
    try:
        rows = client.query(
            f"histogram_quantile({q}, sum by (le) "
            f"(http_server_request_duration_seconds_bucket{{{selector}}}))"
        )
        return float(rows[0]["value"][1]) * 1000
    finally:
        client.close()


def test_requests_from_semconv_histograms_match_promql(fleet):
    url, hosts = fleet
    source = PromRedSource(Client(url), refresh_s=60)
    with engine_over(source, hosts["A"]) as engine:
        frame = engine.tick()
        assert frame.instances == tuple(sorted((hosts["A"], hosts["B"])))
        services = {s.comm: s for s in frame.red.services}
        checkout = services["checkout"]
        (route,) = [r for r in checkout.routes_total if r.route == "/checkout"]
        assert (route.method, route.requests, route.errors) == ("POST", 105, 5)
        assert dict(route.status_classes) == {"2xx": 100, "5xx": 5}
        where = f'service_name="checkout",instance="{hosts["A"]}"'
        for q, got in ((0.5, route.p50_ms), (0.95, route.p95_ms), (0.99, route.p99_ms)):
            assert got == pytest.approx(promql_quantile(url, q, where), abs=1e-3)
        # the first frame's window is the totals (as the probe's first tick is since attach)
        assert checkout.requests == 105 and checkout.errors == 5 and checkout.pid == 0
        assert services["search"].routes_total[0].requests == 40

        engine.select_instance(ALL)  # all hosts: A and B added up
        frame = engine.tick()
        checkout = next(s for s in frame.red.services if s.comm == "checkout")
        assert checkout.routes_total[0].requests == 125
        where = 'service_name="checkout"'
        assert checkout.routes_total[0].p50_ms == pytest.approx(promql_quantile(url, 0.5, where), abs=1e-3)

        engine.select_instance(hosts["B"])
        frame = engine.tick()
        assert [s.comm for s in frame.red.services] == ["checkout"]
        assert frame.red.services[0].routes_total[0].requests == 20
        assert frame.instance == hosts["B"]


def test_cycle_instance_goes_through_all_hosts_then_each(fleet):
    url, hosts = fleet
    source = PromRedSource(Client(url), refresh_s=60)
    with engine_over(source) as engine:
        engine.tick()
        seen = [engine.cycle_instance() for _ in range(len(engine.instances()) + 1)]
        assert seen == [*engine.instances(), ALL]
        assert set(engine.instances()) == {hosts["A"], hosts["B"]}  # C has no HTTP metrics


def test_kepler_power_per_host(fleet):
    url, hosts = fleet
    source = PromPowerSource(Client(url), refresh_s=60)
    with engine_over(source, hosts["A"]) as engine:
        power = engine.tick().power
        assert source.family == "kepler"  # preferred over Scaphandre; no obs_* here
        assert power.source == "kepler" and power.host_watts == 24.0
        assert dict(power.zones) == {"dram": 4.0, "package": 20.0}
        watts = {p.comm: (p.pid, p.watts) for p in power.processes}
        assert watts["nginx"] == (101, 4.0) and watts["postgres"] == (202, 2.0)
        assert watts["container:redis"][1] == 1.25 and watts["container:redis"][0] < 0
        engine.select_instance(ALL)
        power = engine.tick().power
        assert power.host_watts == 54.0  # A's 24 and B's 30
        names = {p.comm for p in power.processes}
        assert f"nginx@{hosts['A']}" in names and f"java@{hosts['B']}" in names
        assert all(p.pid < 0 for p in power.processes)  # a pid means nothing across hosts


def test_scaphandre_power(fleet):
    url, hosts = fleet
    source = PromPowerSource(Client(url), refresh_s=60)
    source.family = "scaphandre"  # as discovery picks it on a fleet without Kepler
    with engine_over(source, hosts["C"]) as engine:
        power = engine.tick().power
        assert power.source == "scaphandre" and power.host_watts == 31.5
        assert {(p.pid, p.comm, p.watts) for p in power.processes} == {
            (303, "java", 7.5),
            (304, "python3", 0.5),
        }


def test_no_power_metrics_is_a_reason_not_a_crash(tmp_path):
    with prometheus(tmp_path) as url:
        source = PromPowerSource(Client(url), refresh_s=60)
        with engine_over(source) as engine:
            frame = engine.tick()
            assert frame.power is None
            status = frame.source("power")
            assert status.stale and "no power metrics in Prometheus" in status.reason


def test_window_is_between_the_last_two_fetches():
    key = ("h:1", "api", "GET", "/x", 200)
    first = PromFetch(100.0, {key: PromHist(10, 1.0, ((0.005, 4), (0.01, 10)))})
    second = PromFetch(115.0, {key: PromHist(40, 2.0, ((0.005, 4), (0.01, 40)))})
    section = prom_red_section(None, PromRedRaw(second, first), 1.0)
    (svc,) = section.services
    assert svc.requests == 30 and svc.rps == 2.0  # 30 requests over the 15 s between fetches
    assert 5.0 < svc.p50_ms <= 10.0  # all 30 new ones are in (5, 10] ms
    assert svc.routes_total[0].requests == 40
    reset = PromFetch(130.0, {key: PromHist(3, 0.1, ((0.005, 3), (0.01, 3)))})
    assert prom_red_section(None, PromRedRaw(reset, second), 1.0).services[0].requests == 3


# ---- what read-only mode sends, and that it writes nothing --------------------------------------

# Reads only: instant and range queries, series, label names and values, metadata, buildinfo,
# and the heartbeat's readiness.
ALLOWED = re.compile(
    r"^(/api/v1/(query|query_range|series|labels|label/[^/]+/values|metadata|"
    r"status/buildinfo)|/-/ready)$"
)


def _repo() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
def test_snapshot_as_nobody_sends_only_reads_and_writes_nothing(fleet, tmp_path):
    url, hosts = fleet
    if shutil.which("runuser") is None or shutil.which("strace") is None:
        pytest.skip("runuser or strace not installed")
    as_nobody = ["runuser", "-u", "nobody", "--"]
    if (
        subprocess.run(
            as_nobody + [sys.executable, "-c", "import obs_tui"], cwd=_repo(), capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("user nobody cannot read this checkout")
    scratch = Path(tempfile.mkdtemp(prefix="obs-ro-"))  # pytest's tmp is not reachable by nobody
    scratch.chmod(0o777)
    trace = scratch / "trace"
    with FaultProxy(url) as proxy:
        result = subprocess.run(
            as_nobody
            + [
                "strace",
                "-f",
                "-qq",
                "-o",
                str(trace),
                "-e",
                "trace=open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,"
                "unlink,unlinkat,link,linkat,symlink,symlinkat,truncate",
                sys.executable,
                "-m",
                "obs_tui",
                "snapshot",
                "--json",
                "--read-only",
                "--prometheus",
                proxy.url,
                "--duration",
                "0.5",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=_repo(),
            env={**os.environ, "HOME": str(scratch / "home"), "PYTHONDONTWRITEBYTECODE": ""},
        )
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        assert any(s["comm"] == "checkout" for s in doc["red"]["services"])
        assert doc["power"]["source"] == "kepler"
        paths = proxy.paths()
    assert paths and all(ALLOWED.match(p) for p in paths), paths
    writes = []
    for line in trace.read_text().splitlines():
        if "= -1" in line:
            continue  # refused (the venv's __pycache__ is root's): nothing was written
        call = line.split(None, 1)[1] if " " in line else line
        if call.startswith(("open(", "openat(")):
            if not re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", call):
                continue
            if re.search(r'"/dev/(null|tty|pts/\d+)"', call):
                continue
        elif not call.startswith(("creat(", "mkdir", "rename", "unlink", "link", "symlink", "truncate")):
            continue
        writes.append(call)
    assert writes == [], writes
    assert not (scratch / "home").exists()
    shutil.rmtree(scratch)


def test_console_read_only_panes_and_instance_key(fleet):
    """The real console in read-only mode over the fleet: only reads reach Prometheus, the
    Requests and Power panes fill, and i switches host."""
    from obs_tui.pipeline import make_engine
    from obs_tui.tui.app import ObsApp
    from obs_tui.tui.panes.power import PowerPane
    from obs_tui.tui.panes.requests import RequestsPane

    url, hosts = fleet

    async def run(proxy_url):
        config = parse(f'interval = 0.3\n[prometheus]\nurl = "{proxy_url}"\nrefresh_s = 1\n')
        app = ObsApp(lambda: make_engine(config, read_only=True), read_only=True)
        async with app.run_test(size=(160, 48)) as pilot:

            async def until(predicate, what):
                for _ in range(200):
                    if predicate():
                        return
                    await pilot.pause(0.05)
                raise AssertionError(what)

            def header():
                return app.main.query_one("#header")._plain

            requests = app.main.query_one(RequestsPane)
            power = app.main.query_one(PowerPane)
            await until(
                lambda: app.frame is not None and app.frame.red is not None and app.frame.power is not None,
                "no read-only frame",
            )
            await until(lambda: "checkout" in requests.table.keys, "no checkout row")
            assert {"pid", "ports"} <= requests.table.hidden_columns  # services by name only
            assert "all 2 hosts" in header()
            await pilot.press("i")
            first = app.engine.instance
            assert first == app.engine.instances()[0]
            await until(lambda: app.frame.instance == first, "instance not applied")
            assert first in header()
            await until(lambda: power.table.keys, "no power rows")
            return app.frame

    with FaultProxy(url) as proxy:
        frame = asyncio.run(run(proxy.url))
        paths = proxy.paths()
    assert frame.instances == tuple(sorted((hosts["A"], hosts["B"])))  # C has no Kepler or HTTP
    expected = {hosts["A"]: {"nginx", "postgres", "container:redis"}, hosts["B"]: {"java"}}
    assert {p.comm for p in frame.power.processes} == expected[frame.instance]
    assert paths and all(ALLOWED.match(p) for p in paths), paths
