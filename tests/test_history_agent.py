"""The flight recorder end to end: a real agent (eBPF probes) records a real server's traffic;
requests sent in a known second are found at that second by `snapshot --at`, by replay in the
console (Pilot) and, exported as OpenMetrics, by a real Prometheus after promtool. The agent
is killed with kill -9 and restarted on the way."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import pytest

from obs_tui.history.store import Store, writer_active
from tests import servers
from tests.test_exporter import http_series, scrape, wait_for
from tests.test_red_probes import fresh, keepalive
from tests.test_tui import aio

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent's eBPF probes need root")

from tests.test_exporter import wait_ready  # noqa: E402

NAME = "hist-test-api"
REQUESTS = 17


def start_agent(tmp, history):
    port = servers.free_port()
    conf = tmp / "agent.toml"
    conf.write_text('[red]\nroutes = ["/orders/{id}"]\n')
    proc = subprocess.Popen(
        servers.agent_command(conf, port, 1, "--history", str(history)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    servers.wait_port(port, proc, timeout=30)
    wait_ready(f"http://127.0.0.1:{port}", proc)  # /metrics answers 503 until the probes are attached
    return proc, f"http://127.0.0.1:{port}/metrics"


def newest(history):
    store = Store(history)
    try:
        chunks = store.chunks()
        return chunks[-1].end if chunks else 0.0
    finally:
        store.close()


def iso(t):
    return datetime.fromtimestamp(t, UTC).isoformat()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Records REQUESTS requests in one known second, kills the agent with kill -9 once they
    are written, restarts it for a few seconds. Yields (history dir, that second, facts)."""
    tmp = tmp_path_factory.mktemp("history-agent")
    history = tmp / "history"
    facts = {}
    with servers.python_server(tmp, name=NAME) as api:
        proc, url = start_agent(tmp, history)
        try:

            def attached():
                keepalive(api.port, ["/health"])
                return ("GET", "/health", "200") in http_series(scrape(url), f"{NAME}:{api.port}")

            assert wait_for(attached, timeout=30), "the agent's probe never saw a request"
            while True:  # a quiet second before, the requests early in the next one
                time.sleep(2.0 + (1 - time.time() % 1))
                second = math.floor(time.time())
                time.sleep(0.2)
                fresh(api.port, [f"/orders/{i}" for i in range(REQUESTS)])  # a connection each: quick
                if time.time() < second + 0.8:
                    break
                pytest.fail("could not send the requests inside one second")  # loaded host
            assert wait_for(lambda: newest(history) >= second + 4, timeout=25), "nothing written"
            killed_at = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            facts["killed_at"] = killed_at
            facts["kept_until"] = newest(history)
            facts["lock_free_after_kill"] = not writer_active(history)
            time.sleep(3.0)
            proc, url = start_agent(tmp, history)
            facts["restarted_at"] = time.time()
            assert wait_for(lambda: newest(history) > facts["restarted_at"], timeout=40), (
                "the restarted agent wrote nothing"
            )
        finally:
            proc.terminate()
            proc.wait(15)
    yield history, second, facts


def snapshot_at(history, at, duration=1):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "obs_tui",
            "snapshot",
            "--json",
            "--at",
            at,
            "--duration",
            str(duration),
            "--history",
            str(history),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def requests_of(doc):
    return {
        (svc["comm"], r["route"]): r["requests"]
        for svc in doc["red"]["services"]
        for r in svc["routes"]
        if svc["comm"] == NAME
    }


def test_snapshot_at_finds_the_requests_in_their_second(recorded):
    history, second, _ = recorded
    doc = snapshot_at(history, iso(second))
    assert requests_of(doc).get((NAME, "/orders/{id}")) == REQUESTS
    svc = next(s for s in doc["red"]["services"] if s["comm"] == NAME)
    assert svc["requests"] == REQUESTS and svc["errors"] == 0 and svc["rps"] == REQUESTS
    assert doc["window"]["frames"] == 1 and doc["duration_s"] == 1
    # the seconds either side hold none of them: exactly that second
    for other in (second - 1, second + 1):
        assert requests_of(snapshot_at(history, iso(other))).get((NAME, "/orders/{id}"), 0) == 0
    wide = snapshot_at(history, iso(second - 2), duration=6)
    assert requests_of(wide)[(NAME, "/orders/{id}")] == REQUESTS


def test_kill_9_loses_at_most_ten_seconds_and_recording_resumes(recorded):
    history, _, facts = recorded
    assert facts["lock_free_after_kill"]
    assert facts["killed_at"] - facts["kept_until"] <= 10.0 + 1.5
    store = Store(history)
    try:
        from obs_tui.history.query import describe

        info = describe(store, time.time())
    finally:
        store.close()
    assert info["newest"] > facts["restarted_at"]
    assert len(info["gaps"]) == 1 and info["gaps"][0]["from"] == facts["kept_until"]


@aio
async def test_replay_in_the_console_shows_that_second(recorded):
    """g, a typed time: every pane shows the recorded frame of that second; ] one tick on;
    L back to live."""
    from obs_tui.engine import Engine
    from obs_tui.pipeline import stages
    from obs_tui.sources.procs import ProcsSource
    from obs_tui.tui.app import ObsApp
    from obs_tui.tui.panes.requests import RequestsPane

    history, second, _ = recorded
    store = Store(history)

    def engine():
        live = Engine(stages([ProcsSource()]), interval=1.0)
        live.history = store
        return live

    app = ObsApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.live_frame is None:
            await pilot.pause(0.05)
        await pilot.press("g")
        await pilot.press(*time.strftime("%H:%M:%S", time.localtime(second)), "enter")
        while not app.replaying:
            await pilot.pause(0.05)
        frame = app.frame
        svc = next(s for s in frame.red.services if s.comm == NAME)
        assert svc.requests == REQUESTS
        assert [(r.route, r.requests) for r in svc.routes] == [("/orders/{id}", REQUESTS)]
        header = app.main.query_one("#header").markup
        assert f"REPLAY {time.strftime('%H:%M:%S', time.localtime(second))}" in header
        assert "ago" in header and app.main.query_one("#timebar").has_class("-show")
        pane = app.query_one(RequestsPane)
        assert pane.frame is frame  # the pane draws the recorded frame
        await pilot.press("right_square_bracket")
        while app.frame is frame:
            await pilot.pause(0.05)
        later = next((s for s in app.frame.red.services if s.comm == NAME), None)
        assert app.frame.taken_at > frame.taken_at and (later is None or later.requests == 0)
        await pilot.press("L")
        await pilot.pause(0.1)
        assert not app.replaying and "REPLAY" not in app.main.query_one("#header").markup
    store.close()


def test_export_goes_into_prometheus_through_promtool(recorded, tmp_path):
    from tests.prometheus_server import prometheus

    history, second, _ = recorded
    text = tmp_path / "history.om"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "obs_tui",
            "export",
            "--from",
            iso(second - 5),
            "--to",
            iso(second + 5),
            "--history",
            str(history),
            "--output",
            str(text),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert text.read_text().endswith("# EOF\n")
    blocks = tmp_path / "data"
    made = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(text), str(blocks)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr + made.stdout
    query = (
        f'http_server_request_duration_seconds_count{{service_name=~"{NAME}:[0-9]+",'
        f'http_route="/orders/{{id}}"}}'
    )
    with prometheus(tmp_path, data_dir=blocks, scrape_self=False) as url:

        def value_at(t):
            q = urllib.parse.urlencode({"query": query, "time": f"{t:.3f}"})
            with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
                result = json.loads(r.read())["data"]["result"]
            return [float(s["value"][1]) for s in result]

        assert value_at(second + 1.5) == [REQUESTS]
        assert value_at(second - 0.5) == []  # not one of them before their second
