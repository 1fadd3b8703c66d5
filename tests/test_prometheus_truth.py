"""One truth about Prometheus on every surface. A real Prometheus behind the fault proxy; each
fault (refused, a listener that never answers, HTTP 500, a body that is not JSON, JSON of the
wrong shape) is driven through `doctor --json`, `snapshot --json`, the console's header and SLO
pane (Textual's Pilot) and the exporter's obs_source_up, with and without [[slo]] configured,
and every surface must say the same thing: not ok, with the same reason, within timeout_s and
one tick of the first request that meets it. Recovery is checked the same way."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from obs_tui.config import parse
from obs_tui.exporter import FrameCollector, serve
from obs_tui.pipeline import make_engine
from obs_tui.sources.prometheus import Client
from obs_tui.tui.app import ObsApp
from obs_tui.tui.panes import SloPane
from tests import fake_frames
from tests.fault_proxy import FaultProxy
from tests.prometheus_server import prometheus

TIMEOUT_S, REFRESH_S, TICK_S = 0.5, 0.3, 0.2
# The readers' refresh_s in the console test: far beyond the bound, so only the heartbeat
# (GET /-/ready every tick) can bring a fault to the surfaces in time.
SLOW_REFRESH_S = 60.0
# Scheduling on a shared two-core machine: how late a thread may run beyond the design bound.
SLACK_S = 0.75
# fault -> what every surface's reason must contain
FAULTS = {
    "down": "Connection refused",
    "blackhole": f"no answer within {TIMEOUT_S:g}s",
    "500": "HTTP 500",
    "garbage": "malformed answer",
    "shape": "malformed answer",
}
SLO = """
[[slo]]
name = "prom-api"
objective = 0.999
error_query = 'sum(rate(prometheus_http_requests_total{code=~"5.."}[{{.window}}]))'
total_query = 'sum(rate(prometheus_http_requests_total[{{.window}}]))'
"""
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b")  # AttributeError, JSONDecodeError...


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    with prometheus(tmp_path_factory.mktemp("truth")) as url, FaultProxy(url, slow_s=0) as proxy:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # two scrapes: the SLO's rate() has an answer
            if Client(url).query("sum(rate(prometheus_http_requests_total[5m])) > 0"):
                break
            time.sleep(0.3)
        yield proxy


@pytest.fixture
def healthy(proxy):
    proxy.mode = "pass"
    yield proxy
    proxy.mode = "pass"


def config_text(url: str, with_slo: bool, refresh_s: float = REFRESH_S) -> str:
    return (
        f'interval = {TICK_S}\n[prometheus]\nurl = "{url}"\ntimeout_s = {TIMEOUT_S}\n'
        f"refresh_s = {refresh_s}\n[carbon]\ngrid_g_per_kwh = 100\n" + (SLO if with_slo else "")
    )


def plain(reason: str) -> None:
    assert not CLASS_NAME.search(reason), f"exception class name on a surface: {reason!r}"
    assert "\n" not in reason


# ---- the command line: doctor and snapshot, as a user runs them ---------------------------------


def run_cli(*args: str) -> subprocess.Popen:
    # as a user would start it: without the BCC_KERNEL_SOURCE that in-process probes set
    env = {k: v for k, v in os.environ.items() if k != "BCC_KERNEL_SOURCE"}
    return subprocess.Popen(
        [sys.executable, "-m", "obs_tui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.mark.parametrize("fault", ["pass", *FAULTS])
def test_doctor_and_snapshot_agree(healthy, tmp_path, fault):
    """doctor --json, and snapshot --json without [[slo]] (the reported bug: a refused
    Prometheus read as ok and the SLO source as live) and with [[slo]] in read-only mode
    (its Requests and Power panes read Prometheus too, through the same client)."""
    configs = {}
    for with_slo in (False, True):
        configs[with_slo] = tmp_path / f"slo-{with_slo}.toml"
        configs[with_slo].write_text(config_text(healthy.url, with_slo))
    healthy.mode = fault
    procs = {
        "doctor": run_cli("doctor", "--json", "--read-only", "--config", str(configs[False])),
        False: run_cli("snapshot", "--json", "--duration", "0.1", "--config", str(configs[False])),
        True: run_cli(
            "snapshot", "--json", "--read-only", "--duration", "0.1", "--config", str(configs[True])
        ),
    }
    docs = {name: result(proc) for name, proc in procs.items()}

    doctor = docs.pop("doctor")["capabilities"]["prometheus"]
    if fault == "pass":
        assert doctor["ok"] and doctor["state"] == "ok"
    else:
        assert not doctor["ok"] and doctor["state"] == "off" and FAULTS[fault] in doctor["reason"]
    plain(doctor["reason"])
    for with_slo, doc in docs.items():
        cap, slo = doc["capabilities"]["prometheus"], doc["sources"]["slo"]
        if fault == "pass":
            assert cap == {"ok": True, "reason": "", "state": "ok", "stale_since": None}
            assert slo["mode"] == "live" and not slo["stale"] and slo["stale_since"] is None
            # (read-only Power is stale all along: this Prometheus has no power metrics)
            assert not doc["sources"]["red"]["stale"], doc["sources"]["red"]
            assert [s["state"] for s in doc["slo"]] == (["ok"] if with_slo else [])
            continue
        assert not cap["ok"] and cap["state"] == "off", (with_slo, cap)
        assert FAULTS[fault] in cap["reason"] and cap["stale_since"], (with_slo, cap)
        assert slo["stale"] and FAULTS[fault] in slo["reason"] and slo["stale_since"], slo
        plain(cap["reason"])
        if with_slo:  # never data: its state is the error, its alerts unknown, never "false"
            for name in ("red", "power"):  # read-only panes: the same reason, stale
                status = doc["sources"][name]
                assert status["stale"] and FAULTS[fault] in status["reason"], (name, status)
                plain(status["reason"])
            (s,) = doc["slo"]
            assert s["state"] == "error" and FAULTS[fault] in s["reason"]
            plain(s["reason"])
            assert all(a["firing"] is None for a in s["alerts"])
        else:
            assert doc["slo"] == []


# ---- the console and the exporter, on one engine -------------------------------------------------


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^obs_source_up\{source="([^"]+)"\} (\S+)$', text, re.M)
    }


class Surfaces:
    """What the console and the exporter show about Prometheus right now."""

    def __init__(self, app: ObsApp, exporter_url: str) -> None:
        self.app, self.exporter_url = app, exporter_url

    def read(self) -> dict:
        app = self.app
        frame = app.frame
        pane = app.main.query_one(SloPane)
        return {
            "capability": frame.capability("prometheus"),
            "slo": frame.source("slo"),
            "header": app.main.query_one("#header")._plain,
            "pane": f"{pane.summary_line._plain} | {pane._notice or ''}",
            "up": metrics(self.exporter_url),
        }

    def agree_failing(self, want: str) -> bool:
        seen = self.read()
        cap, slo = seen["capability"], seen["slo"]
        return (
            not cap.ok
            and want in cap.reason
            and slo.stale
            and want in slo.reason
            and f"slo stale: {want}" in seen["header"].replace("  ", " ")
            and want in seen["pane"]
            and seen["up"].get("slo") == 0
            and seen["up"].get("prometheus") == 0
        )

    def agree_ok(self) -> bool:
        seen = self.read()
        return (
            seen["capability"].ok
            and not seen["slo"].stale
            and "slo live" in seen["header"]
            and "Prometheus" not in seen["pane"]
            and seen["up"].get("slo") == 1
            and seen["up"].get("prometheus") == 1
        )


async def until(pilot, cond, timeout: float) -> float:
    started = time.monotonic()
    while not cond():
        if time.monotonic() - started > timeout:
            raise AssertionError("the surfaces did not agree in time")
        await pilot.pause(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("refresh_s", [REFRESH_S, SLOW_REFRESH_S], ids=["refresh-fast", "refresh-slow"])
@pytest.mark.parametrize("with_slo", [False, True], ids=["no-slo", "slo"])
def test_console_and_exporter_agree_within_timeout_and_a_tick(healthy, with_slo, refresh_s):
    """However seldom the readers poll (refresh_s far beyond the bound too), the heartbeat sees
    a fault within one tick (its next beat) and timeout_s, and the next frame shows it."""
    config = parse(config_text(healthy.url, with_slo, refresh_s))
    collector = FrameCollector()
    server = serve(collector, "127.0.0.1:0")
    seen: dict[str, float] = {}
    back: dict[str, float] = {}

    async def run() -> None:
        app = ObsApp(lambda: make_engine(config, False, sinks=[collector.publish]))
        async with app.run_test(size=(120, 40)) as pilot:
            surfaces = Surfaces(app, server.url)
            await until(pilot, lambda: app.frame is not None and surfaces.agree_ok(), 60)
            if with_slo:
                await until(pilot, lambda: app.frame.slo and app.frame.slo[0].state == "ok", 30)
            for fault, want in FAULTS.items():
                healthy.mode = fault
                # The next beat is at most one tick away; its failure is known within timeout_s
                # and shown by the frame after it.
                seen[fault] = await until(
                    pilot,
                    lambda want=want: surfaces.agree_failing(want),
                    TICK_S + TIMEOUT_S + TICK_S + SLACK_S,
                )
                for reason in (app.frame.capability("prometheus").reason, app.frame.source("slo").reason):
                    plain(reason)
                if with_slo:  # data had come: the pane keeps it and says so
                    assert "showing the last data" in app.main.query_one(SloPane)._notice
                healthy.mode = "pass"
                # The next beat is answered; readers that failed meanwhile ask again at once.
                back[fault] = await until(pilot, surfaces.agree_ok, TICK_S + TIMEOUT_S + TICK_S + SLACK_S)

    try:
        asyncio.run(run())
    finally:
        server.close()
    print(
        f"seconds from fault to every surface ({'with' if with_slo else 'without'} SLOs,"
        f" refresh_s {refresh_s:g}):",
        {k: round(v, 2) for k, v in seen.items()},
        "and back:",
        {k: round(v, 2) for k, v in back.items()},
    )


def test_an_answered_heartbeat_never_hides_a_readers_failure(healthy):
    """/-/ready answers while every query gets JSON of the wrong shape: the SLO source is still
    stale with that reason, and Prometheus is degraded (it answers; that reader cannot use it)."""
    healthy.spared = ("/-/ready",)
    engine = make_engine(parse(config_text(healthy.url, True)), False)
    try:
        engine.wait_ready(30)
        deadline = time.monotonic() + 30
        while not engine.tick().capability("prometheus").ok:
            assert time.monotonic() < deadline, engine.capabilities["prometheus"]
            time.sleep(TICK_S)
        healthy.mode = "shape"
        deadline = time.monotonic() + REFRESH_S + TIMEOUT_S + TICK_S + 10
        while True:
            frame = engine.tick()
            cap, slo = frame.capability("prometheus"), frame.source("slo")
            if slo.stale and not cap.ok:
                break
            assert time.monotonic() < deadline, (cap, slo)
            time.sleep(TICK_S)
        assert "malformed answer" in slo.reason and "malformed answer" in cap.reason
        assert cap.state == "degraded"
        assert engine.services["prometheus"].health.reader("heartbeat").ok
    finally:
        healthy.spared = ()
        engine.close()


# ---- the header's badges: each thing once, the reason readable at 80 columns too ---------------

RAPL_REASON = "estimate: no RAPL zones in /sys/class/powercap and no amd_energy sockets in /sys/class/hwmon"


def failing_frame(i: int):
    from dataclasses import replace

    from obs_tui.model import SourceStatus

    frame = fake_frames.full_frame(i)
    return replace(
        frame,
        sources=(
            SourceStatus("procs", "live"),
            SourceStatus("red", "live"),
            SourceStatus("power", "estimate", RAPL_REASON),
            SourceStatus(
                "slo",
                "live",
                "cannot connect: Connection refused",
                stale=True,
                stale_since=frame.taken_at - 30,
            ),
        ),
    )


@pytest.mark.parametrize("width", [80, 120, 160])
def test_badges_say_each_thing_once_with_a_readable_reason(width):
    async def run() -> str:
        app = ObsApp(lambda: fake_frames.FakeEngine(failing_frame))
        async with app.run_test(size=(width, 40)) as pilot:
            while app.frames < 1:
                await pilot.pause(0.05)
            return app.main.query_one("#header")._plain

    header = asyncio.run(run())
    assert "slo stale: Connection refused" in header  # the failing source's cause, at any width
    assert "estimate: estimate" not in header and "est: est" not in header
    assert not re.search(r"\w…", header), header  # nothing cut in the middle of a word
    if width >= 160:
        assert "power estimate: no RAPL zones" in header
