"""The exporter: semconv buckets from probe buckets, the collector's energy step and bounds,
and the real agent scraped over HTTP (plain, TLS, basic auth) and parsed with prometheus_client's
own text parser."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from obs_tui.analysis import histogram as h
from obs_tui.exporter import ENERGY_STEP_S, ExporterError, FrameCollector, parse_listen, serve
from tests import fake_frames, servers

BOUNDS = h.SEMCONV_BOUNDS_S


def _hist(durations_ns):
    out = {}
    for ns in durations_ns:
        out[h.bucket_of(ns)] = out.get(h.bucket_of(ns), 0) + 1
    return tuple(sorted(out.items()))


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=12 * 10**9), max_size=200))
def test_le_counts_exact_but_for_the_straddling_bucket(durations):
    le = h.cumulative_le(_hist(durations))
    assert list(le) == sorted(le)  # cumulative: monotone in the bound
    for bound, count in zip(BOUNDS, le):
        limit = bound * 1e9
        exact = sum(1 for d in durations if d <= limit)
        # only requests in the probe bucket holding the bound can land on the wrong side
        lower, upper = h.bucket_bounds_ns(h.bucket_of(int(limit)))
        unsure = sum(1 for d in durations if lower <= d < upper)
        assert exact - unsure <= count <= exact + unsure
        assert (upper - lower) <= limit / 16  # that bucket is at most 6.25 % of the bound wide


def test_le_counts_of_point_masses_far_from_bounds():
    hist = _hist([20_000_000] * 7 + [300_000_000] * 3)  # 20 ms and 300 ms
    le = dict(zip(BOUNDS, h.cumulative_le(hist)))
    assert le[0.01] == 0 and le[0.025] == 7 and le[0.25] == 7 and le[0.5] == 10 and le[10.0] == 10


def test_le_counts_grow_with_a_cumulative_histogram():
    a = _hist([4_990_000] * 5)
    b = _hist([4_990_000] * 9 + [6_000_000])
    assert all(x <= y for x, y in zip(h.cumulative_le(a), h.cumulative_le(b)))


# ---- the collector -------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def families(collector):
    return {f.name: f for f in collector.collect()}


def test_energy_changes_at_most_once_a_second_in_whole_joules():
    clock = Clock()
    collector = FrameCollector(top_processes=3, clock=clock)
    frame = fake_frames.full_frame(0)
    collector.publish(frame)
    first = {s.labels["pid"]: s.value for s in families(collector)["obs_process_cpu_joules"].samples}
    assert len(first) == 3  # top-N by energy bounds the series
    assert all(v == int(v) for v in first.values())
    clock.t += ENERGY_STEP_S / 2
    collector.publish(fake_frames.full_frame(5))  # more joules, but within the second
    assert {s.labels["pid"]: s.value for s in families(collector)["obs_process_cpu_joules"].samples} == first
    clock.t += ENERGY_STEP_S / 2
    frame = fake_frames.full_frame(9)
    collector.publish(frame)
    later = {s.labels["pid"]: s.value for s in families(collector)["obs_process_cpu_joules"].samples}
    top = max(frame.power.processes, key=lambda p: p.joules)
    assert later[str(top.pid)] == int(top.joules)  # the section's total since start, floored


def test_power_carbon_and_build_info_families():
    collector = FrameCollector(clock=Clock())
    frame = fake_frames.full_frame(0)
    collector.publish(frame)
    fams = families(collector)
    (host,) = fams["obs_host_power_watts"].samples
    assert host.labels == {"source": "estimate"} and host.value == round(frame.power.host_watts, 1)
    zones = {s.labels["zone"]: s.value for s in fams["obs_host_zone_power_watts"].samples}
    assert zones == {z: round(w, 1) for z, w in frame.power.zones} and "host" not in zones
    assert fams["obs_grid_intensity_grams_per_kilowatt_hour"].samples[0].value == frame.carbon.grid_g_per_kwh
    assert fams["obs_build_info"].samples[0].labels["host"] == fake_frames.HOST
    grams = {s.labels["pid"]: s.value for s in fams["obs_process_carbon_grams"].samples}
    kernel = {str(p.pid) for p in frame.processes if p.comm.startswith("kworker/")}
    assert grams == {
        str(c.pid): round(c.grams, 3) for c in frame.carbon.processes if str(c.pid) not in kernel
    }


def test_lost_events_are_published_by_reason_zeros_included():
    import dataclasses

    from obs_tui.analysis.red import LOST_REASONS

    frame = fake_frames.full_frame(0)
    red = dataclasses.replace(
        frame.red,
        lost_events=2,
        lost_since_attach=7,
        lost_reasons=((LOST_REASONS[0], 5), (LOST_REASONS[3], 2)),
    )
    collector = FrameCollector(clock=Clock())
    collector.publish(dataclasses.replace(frame, red=red))
    lost = {
        s.labels["reason"]: s.value
        for s in families(collector)["obs_red_lost_events"].samples
        if s.name == "obs_red_lost_events_total"
    }
    assert lost == {reason: {0: 5.0, 3: 2.0}.get(i, 0.0) for i, reason in enumerate(LOST_REASONS)}


def test_source_up_follows_every_source_and_capability():
    """obs_source_up says what the header says: 1 live or estimate, 0 off or stale; the
    capabilities without a source of their name (ebpf, rapl, prometheus) by their ok."""
    collector = FrameCollector(clock=Clock())
    collector.publish(fake_frames.off_frame(0))
    up = {s.labels["source"]: s.value for s in families(collector)["obs_source_up"].samples}
    assert up == {"procs": 1.0, "red": 0.0, "ebpf": 0.0, "prometheus": 0.0, "rapl": 0.0}
    full = fake_frames.full_frame(0)
    stale = replace(
        full,
        sources=tuple(
            replace(s, stale=True, reason="HTTP 500") if s.name == "slo" else s for s in full.sources
        ),
    )
    collector.publish(stale)
    up = {s.labels["source"]: s.value for s in families(collector)["obs_source_up"].samples}
    assert up["slo"] == 0.0 and up["power"] == 1.0 and up["procs"] == 1.0


def test_no_frame_yet_publishes_build_info_only():
    assert list(families(FrameCollector())) == ["obs_build_info"]


@pytest.mark.parametrize("text", ["9464", "host:", ":x", "1.2.3.4:70000", "", "h:-1"])
def test_bad_listen_addresses(text):
    with pytest.raises(ExporterError, match="ADDR:PORT"):
        parse_listen(text)


def test_ipv6_listen_address():
    assert parse_listen("[::1]:9464") == ("::1", 9464)


# ---- the server: TLS and basic auth ------------------------------------------------------------


@pytest.fixture
def collector():
    c = FrameCollector(clock=Clock())
    c.publish(fake_frames.full_frame(0))
    return c


def _get(url, context=None, auth=None):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        return response.status, response.read().decode()


def test_tls_serves_only_tls(tmp_path, collector):
    cert, key = servers.self_signed_cert(tmp_path)
    server = serve(collector, f"127.0.0.1:{servers.free_port()}", str(cert), str(key))
    try:
        assert server.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        status, body = _get(server.url, context)
        assert status == 200 and "obs_build_info" in body
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            _get(server.url.replace("https://", "http://"))
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            _get(server.url)  # the system CAs do not know a self-signed cert
    finally:
        server.close()


def test_a_silent_client_does_not_stall_tls_scrapes(tmp_path, collector):
    cert, key = servers.self_signed_cert(tmp_path)
    server = serve(collector, f"127.0.0.1:{servers.free_port()}", str(cert), str(key))
    port = server.server.server_port
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port)):  # connects, never says hello
            context = ssl.create_default_context(cafile=str(cert))
            started = time.monotonic()
            assert _get(server.url, context)[0] == 200
            assert time.monotonic() - started < 3
    finally:
        server.close()


def test_basic_auth(tmp_path, collector):
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    server = serve(
        collector,
        f"127.0.0.1:{servers.free_port()}",
        basic_auth_user="prom",
        basic_auth_password_file=str(secret),
    )
    try:
        for auth in (None, "prom:wrong", "prom:s3cre", "other:s3cret"):
            with pytest.raises(urllib.error.HTTPError) as err:
                _get(server.url, auth=auth)
            assert err.value.code == 401
        assert _get(server.url, auth="prom:s3cret")[0] == 200
        for path in ("/-/ready", "/", "/../../etc/passwd"):  # every path, not only /metrics
            assert status_of(server.url, path)[0] == 401, path
    finally:
        server.close()


NOT_SERVED = (
    "/",
    "/favicon.ico",
    "/../../etc/passwd",
    "/metrics/",
    "/metricsx",
    "/-/ready/",
    "/-/healthy",
    "/%2e%2e/%2e%2e/etc/passwd",
)


def test_ready_and_metrics_wait_for_the_first_frame_and_nothing_else_is_served():
    clock = Clock()
    collector = FrameCollector(clock=clock)
    server = serve(collector, f"127.0.0.1:{servers.free_port()}")
    try:
        for path in ("/metrics", "/-/ready", "/metrics?name[]=obs_build_info"):
            status, body = status_of(server.url, path)
            assert status == 503 and "not ready" in body, (path, status, body)
        for path in NOT_SERVED:
            status, body = status_of(server.url, path)
            assert status == 404 and "obs_build_info" not in body, path
        collector.publish(fake_frames.off_frame(0))
        assert status_of(server.url, "/-/ready") == (
            200,
            "ready\nred off: needs root (CAP_BPF and CAP_PERFMON)\n",
        )
        status, body = status_of(server.url, "/metrics")
        assert status == 200 and "obs_build_info" in body
        for path in NOT_SERVED:
            status, body = status_of(server.url, path)
            assert status == 404 and "obs_build_info" not in body, path
        assert status_of(server.url, "/metrics", method="POST")[0] == 405
        collector.publish(fake_frames.full_frame(1))
        assert status_of(server.url, "/-/ready") == (200, "ready\n")
        # the engine stopped ticking (interval 1 s): after 10 s the last frame is not served as current
        clock.t += 9.9
        assert status_of(server.url, "/metrics")[0] == 200
        clock.t += 0.2
        for path in ("/metrics", "/-/ready"):
            status, body = status_of(server.url, path)
            assert status == 503 and body == "stale: no new frame for 10 s (interval 1 s)\n", body
        collector.publish(fake_frames.full_frame(2))
        assert status_of(server.url, "/metrics")[0] == 200
    finally:
        server.close()


def test_bad_exporter_settings_are_one_line_errors(tmp_path, collector):
    with pytest.raises(ExporterError, match="both"):
        serve(collector, "127.0.0.1:0", tls_cert_file=str(tmp_path / "c"))
    with pytest.raises(ExporterError, match="cannot load TLS"):
        serve(collector, "127.0.0.1:0", str(tmp_path / "c"), str(tmp_path / "k"))
    with pytest.raises(ExporterError, match="No such file"):
        serve(
            collector, "127.0.0.1:0", basic_auth_user="u", basic_auth_password_file=str(tmp_path / "missing")
        )


# ---- the real agent under real traffic ---------------------------------------------------------


@contextlib.contextmanager
def agent(tmp, *extra, config="", ready=True):
    """The real agent; with ready, yields once /-/ready answers 200."""
    port = servers.free_port()
    conf = tmp / "agent.toml"
    conf.write_text(config)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        servers.agent_command(conf, port, 0.5, *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        servers.wait_port(port, proc, timeout=30)
        if ready:
            wait_ready(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}/metrics", proc
    finally:
        proc.terminate()
        proc.wait(15)


def status_of(url, path, method="GET"):
    """The status code of one request for `path` exactly as given (urllib would not send
    /../../etc/passwd as it is)."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def wait_ready(base, proc, timeout=60.0):
    """Polls /-/ready as a client of the agent would; the statuses seen, in order."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the agent exited: {proc.stderr.read()}"
        status, _ = status_of(base, "/-/ready")
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == 200:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"/-/ready never answered 200 (saw {seen})")


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return {f.name: f for f in text_string_to_metric_families(response.read().decode())}


def http_series(fams, service_pid_comm):
    out = {}
    fam = fams.get("http_server_request_duration_seconds")
    for s in fam.samples if fam else ():
        if s.labels.get("service_name") != service_pid_comm:
            continue
        key = (s.labels["http_request_method"], s.labels["http_route"], s.labels["http_response_status_code"])
        out.setdefault(key, {})[(s.name.rsplit("_", 1)[1], s.labels.get("le"))] = s.value
    return out


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


@pytest.mark.skipif(os.geteuid() != 0, reason="the agent's eBPF probes need root")
def test_agent_publishes_exact_request_counts_and_buckets(tmp_path):
    import psutil

    from tests.test_red_probes import keepalive

    with (
        servers.python_server(tmp_path, name="exp-test-api") as api,
        agent(tmp_path, config='[red]\nroutes = ["/users/{id}"]\n') as (url, _),
    ):
        assert psutil.Process(api.pid).name() == "exp-test-api"
        comm = f"exp-test-api:{api.port}"  # the service name: no OTEL_SERVICE_NAME, no rule

        # the server listens before the engine has loaded the probe: wait until a request shows
        def attached():
            keepalive(api.port, ["/health"])
            return ("GET", "/health", "200") in http_series(scrape(url), comm)

        assert wait_for(attached, timeout=30), "the agent's probe never saw a request"
        paths = ["/users/1", "/users/2", "/users/3"] * 10 + ["/sleep/20"] * 6 + ["/status/503"] * 4
        keepalive(api.port, paths)

        def done():
            series = http_series(scrape(url), comm)
            got = {k: v[("count", None)] for k, v in series.items()}
            # numeric segments are normalised: /sleep/20 -> /sleep/{id}, /status/503 -> /status/{id}
            got.pop(("GET", "/health", "200"), None)
            return (
                series
                if got
                == {
                    ("GET", "/users/{id}", "200"): 30,
                    ("GET", "/sleep/{id}", "200"): 6,
                    ("GET", "/status/{id}", "503"): 4,
                }
                else None
            )

        series = wait_for(done)
        assert series, http_series(scrape(url), comm)
        sleep = series[("GET", "/sleep/{id}", "200")]
        assert sleep[("bucket", "0.01")] == 0 and sleep[("bucket", "0.025")] == 6
        assert sleep[("bucket", "+Inf")] == 6 and 6 * 0.02 <= sleep[("sum", None)] < 6 * 0.025
        users = series[("GET", "/users/{id}", "200")]
        assert users[("bucket", "0.005")] == 30  # a trivial handler answers in well under 5 ms
        errors = series[("GET", "/status/{id}", "503")]
        assert errors[("bucket", "0.005")] == 4 and errors[("count", None)] == 4


def _count(url, comm):
    return sum(v[("count", None)] for v in http_series(scrape(url), comm).values())


@pytest.mark.skipif(os.geteuid() != 0, reason="the agent's eBPF probes need root")
def test_agent_ready_means_every_request_after_it_is_counted(tmp_path):
    """A client that polls /-/ready and then sends 25 requests sees exactly 25 on /metrics:
    not fewer (requests made while the probes load), not more."""
    from tests.test_red_probes import fresh, keepalive

    with (
        servers.python_server(tmp_path, name="exp-ready-api") as api,
        agent(tmp_path, ready=False) as (url, proc),
    ):
        base = url.removesuffix("/metrics")
        assert status_of(base, "/metrics")[0] == 503  # loading the probes takes a second or more
        seen = wait_ready(base, proc)
        assert seen == [503, 200], seen
        keepalive(api.port, ["/users/1"] * 20)
        fresh(api.port, ["/status/503"] * 5)
        assert wait_for(lambda: _count(url, f"exp-ready-api:{api.port}") >= 25), _count(
            url, f"exp-ready-api:{api.port}"
        )
        time.sleep(1.2)  # two more ticks: nothing more turns up
        assert _count(url, f"exp-ready-api:{api.port}") == 25
        for path in ("/", "/favicon.ico", "/../../etc/passwd"):
            status, body = status_of(base, path)
            assert status == 404 and "http_server" not in body
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    lines = err.strip().splitlines()
    assert "503 until ready" in lines[0]
    ready = [line for line in lines if "agent: ready in" in line]
    assert len(ready) == 1 and "probes attached, first frame published" in ready[0], err
    assert float(ready[0].split("ready in ")[1].split(" s")[0]) > 0


def test_bad_serve_metrics_address_is_one_line():
    from tests.test_cli import assert_one_line_error, run_cli

    assert_one_line_error(run_cli("--serve-metrics", "nowhere"), "--serve-metrics", "ADDR:PORT")
    assert_one_line_error(run_cli("agent", "--listen", "1.2.3.4:x"), "--listen", "ADDR:PORT")


def test_console_serves_its_frames(tmp_path):
    """--serve-metrics: the console's own engine publishes each frame it shows."""
    import asyncio

    from obs_tui.cli import start_exporter
    from obs_tui.config import parse
    from obs_tui.pipeline import make_engine
    from obs_tui.tui.app import ObsApp

    config = parse("interval = 0.3\n")
    collector, server = start_exporter(config, f"127.0.0.1:{servers.free_port()}", "--serve-metrics")
    assert status_of(server.url, "/metrics")[0] == 503  # no frame yet

    async def run():
        app = ObsApp(lambda: make_engine(config, False, sinks=[collector.publish]))
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(1200):  # loading the probes takes seconds on a busy host
                if app.frames >= 3:
                    break
                await pilot.pause(0.05)
            fams = scrape(server.url)
            answers = {
                path: status_of(server.url, path)[0]
                for path in ("/-/ready", "/", "/favicon.ico", "/../../etc/passwd")
            }
            await pilot.press("q")
        return app.frame, fams, answers

    try:
        frame, fams, answers = asyncio.run(run())
    finally:
        server.close()
    assert answers == {"/-/ready": 200, "/": 404, "/favicon.ico": 404, "/../../etc/passwd": 404}
    assert fams["obs_build_info"].samples[0].labels["host"] == frame.host
    assert frame.power is not None  # RAPL or the estimator: power exists on any host
    assert [s.labels for s in fams["obs_host_power_watts"].samples] == [{"source": frame.power.source}]
    zones = {s.labels["zone"] for s in fams["obs_host_zone_power_watts"].samples}
    assert zones == {z for z, _ in frame.power.zones}
