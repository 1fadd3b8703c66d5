"""`snapshot --json` from the real CLI: the schema keys that scripts rely on."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest


def test_snapshot_json_schema():
    # as a user would start it: without the BCC_KERNEL_SOURCE that in-process probes of other
    # tests have set in this environment
    env = {k: v for k, v in os.environ.items() if k != "BCC_KERNEL_SOURCE"}
    result = subprocess.run(
        [sys.executable, "-m", "obs_tui", "snapshot", "--json", "--duration", "1.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1
    assert doc["host"] == os.uname().nodename
    datetime.fromisoformat(doc["taken_at"])
    assert 1.0 <= doc["duration_s"] < 5  # power needs a window of 1 s (energy: never finer)
    assert set(doc["capabilities"]) == {"ebpf", "rapl", "prometheus"}
    for cap in doc["capabilities"].values():
        assert isinstance(cap["ok"], bool)
        assert cap["ok"] or cap["reason"]
    for key in ("red", "power", "carbon", "slo"):
        assert key in doc
    assert doc["sources"]["procs"]["mode"] == "live"
    # no RAPL tree on these machines: the reason must say where it looked
    assert not doc["capabilities"]["rapl"]["ok"]
    assert "powercap" in doc["capabilities"]["rapl"]["reason"]
    # ... so power is the CCF estimate, marked as such, and its books balance
    power = doc["power"]
    assert power["source"] == "estimate" and doc["sources"]["power"]["mode"] == "estimate"
    assert set(power["zones"]) == {"cpu", "memory"} and power["host_watts"] > 0
    assert power["host_watts"] == pytest.approx(sum(power["zones"].values()), rel=1e-4)
    attributed = sum(p["watts"] for p in power["processes"]) + power["idle_watts"]
    assert attributed == pytest.approx(power["host_watts"], rel=0.005)
    assert power["estimate"]["vcpus"] == os.cpu_count() and power["estimate"]["source_url"]
    # with --duration S, joules cover the window between the two energy readings of those S
    # seconds (at least 1 s: energy is never read finer): watts x that window for the host
    assert 0.95 <= power["window_s"] <= doc["duration_s"] + 0.5
    assert power["host_joules"] == pytest.approx(power["host_watts"] * power["window_s"], rel=0.05)
    from obs_tui import bcc_setup

    if os.geteuid() == 0 and bcc_setup.running_kernel_headers() is None:
        # the kernel-headers fallback says so in one line, on stderr (stdout stays JSON)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "assembled" in lines[0], result.stderr
        assert doc["sources"]["red"]["mode"] == "live"


def test_full_frame_matches_the_documented_schema():
    """Every key of the documented schema (docs/snapshot.md and the pages it links), with mapping fields as JSON objects."""
    from obs_tui.snapshot import frame_to_json
    from tests.fake_frames import full_frame

    doc = json.loads(json.dumps(frame_to_json(full_frame(3))))
    service = doc["red"]["services"][0]
    assert {
        "pid",
        "comm",
        "ports",
        "requests",
        "errors",
        "rps",
        "error_ratio",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "routes",
    } <= set(service)
    assert {"method", "route", "requests", "errors", "p50_ms", "p95_ms", "p99_ms"} <= set(
        service["routes"][0]
    )
    assert isinstance(service["status_classes"], dict)
    assert {"source", "host_watts", "idle_watts", "zones", "processes"} <= set(doc["power"])
    assert isinstance(doc["power"]["zones"], dict)
    assert {"pid", "comm", "cpu_seconds", "watts", "joules", "share"} <= set(doc["power"]["processes"][0])
    assert {"subzones", "busy_ratio", "host_joules", "idle_joules", "cpu_time_source", "estimate"} <= set(
        doc["power"]
    )
    assert isinstance(doc["power"]["subzones"], dict)
    assert {"grid_g_per_kwh", "pue", "host_g_per_h", "processes"} <= set(doc["carbon"])
    assert {"pid", "g_per_h", "joules_per_request", "g_per_1k_requests"} <= set(doc["carbon"]["processes"][0])
    slo = doc["slo"][0]
    assert {
        "name",
        "source",
        "objective",
        "period",
        "sli",
        "error_budget_remaining",
        "burn_rates",
        "alerts",
        "state",
        "reason",
    } <= set(slo)
    assert isinstance(slo["burn_rates"], dict)
    assert {"severity", "long", "short", "factor", "firing"} <= set(slo["alerts"][0])


def test_a_window_holds_every_request_of_it_and_its_quantiles(tmp_path, red):
    """The engine's window (what `snapshot --duration` reads), on the real probe and a real
    server: requests from the window's first tick are in its totals and quantiles though
    later ticks had other traffic or none; rates are over the whole window."""
    from obs_tui.engine import Engine
    from obs_tui.pipeline import stages
    from tests import servers
    from tests.test_red_probes import keepalive

    with servers.python_server(tmp_path, name="win-test-api") as api:
        engine = Engine(stages([red]), interval=0.5)
        keepalive(api.port, ["/users/1"] * 7)  # before the window: not in it
        engine.tick()
        engine.open_window()
        keepalive(api.port, ["/sleep/30"] * 4)
        engine.tick()
        time.sleep(0.5)
        keepalive(api.port, ["/users/2"] * 16)
        engine.tick()
        time.sleep(0.5)
        frame = engine.tick()  # a last tick with no traffic
    (svc,) = [s for s in frame.red.services if s.pid == api.pid]
    assert svc.requests == 20
    assert svc.rps == pytest.approx(20 / frame.duration_s, rel=0.01) and frame.duration_s >= 1.0
    assert svc.p95_ms >= 30.0 and svc.p50_ms < 30.0  # 4 of 20 slept 30 ms
    assert {(r.route, r.requests) for r in svc.routes} == {("/users/{id}", 16), ("/sleep/{id}", 4)}
