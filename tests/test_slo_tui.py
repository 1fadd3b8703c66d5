"""The console with the real engine and SLO source against a real Prometheus behind a fault
proxy: every fault shows its reason on the SLO pane, the app never crashes, and it recovers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from obs_tui.config import parse
from obs_tui.engine import Engine
from obs_tui.pipeline import make_engine, stages
from obs_tui.sources.procs import ProcsSource
from obs_tui.sources.prometheus import Client
from obs_tui.sources.slo import SloSource
from obs_tui.sources.slo_specs import load_all
from obs_tui.tui.app import ObsApp
from obs_tui.tui.panes import SloPane
from obs_tui.tui.screens.detail import DetailScreen
from tests import servers
from tests.fault_proxy import FaultProxy
from tests.prometheus_server import prometheus
from tests.test_tui import aio

SLO = """
[[slo]]
name = "prom-api"
objective = 0.99
error_query = 'sum(rate(prometheus_http_requests_total{code=~"5.."}[{{.window}}]))'
total_query = 'sum(rate(prometheus_http_requests_total[{{.window}}]))'
"""


@pytest.fixture(scope="module")
def live_prom(tmp_path_factory):
    with prometheus(tmp_path_factory.mktemp("live")) as url:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # two scrapes: rate() over 5m has an answer
            if Client(url).query("sum(rate(prometheus_http_requests_total[5m])) > 0"):
                break
            time.sleep(0.3)
        yield url


def engine_for(url: str) -> Engine:
    config = parse(f'[prometheus]\nurl = "{url}"\ntimeout_s = 0.5\nrefresh_s = 0.3\n' + SLO)
    client = Client.from_config(config.prometheus)
    source = SloSource(
        client, load_all(config), refresh_s=0.3, discover=False, backoff_min_s=0.1, backoff_max_s=0.3
    )
    return Engine(stages([ProcsSource(), source]), interval=0.2, services={"prometheus": client})


async def wait_for(pilot, cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


@aio
async def test_faults_show_on_the_pane_and_the_console_recovers(live_prom):
    with FaultProxy(live_prom, slow_s=2) as proxy:
        app = ObsApp(lambda: engine_for(proxy.url), read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            pane = app.main.query_one(SloPane)

            def row_state() -> str:
                row = pane.table.row("prom-api")
                return "" if row is None else row[8][0]

            await wait_for(pilot, lambda: row_state() == "ok")
            assert "data" in pane.summary_line._plain and pane._notice == ""
            for mode, reason in (
                ("500", "HTTP 500: injected"),
                ("slow", "no answer within 0.5s"),
                ("malformed", "malformed answer"),
                ("down", "Connection refused"),
            ):
                proxy.mode = mode
                await wait_for(pilot, lambda reason=reason: reason in (pane._notice or ""))
                assert app.is_running and app.frame.source("slo").stale
                assert not app.frame.capability("prometheus").ok
                assert row_state() == "ok"  # the last good numbers stay, with their age
                assert pane.table.row("prom-api")[-1][1] == "warn"
            proxy.mode = "pass"
            await wait_for(pilot, lambda: not (pane._notice or "") and not app.frame.source("slo").stale)
            status = app.frame.slo[0]
            assert pane.table.row("prom-api")[-1] == ""  # fresh: no age on the row
            assert status.state == "ok" and status.last_error == "" and status.data_age_s < 5
            assert dict(status.burn_rates)["5m"] == 0.0  # no 5xx from this Prometheus
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
            note = str(app.screen.spec.note)
            assert "obs_window" in note and "prometheus_http_requests_total" in note
            rows = [k for k, _ in app.screen.spec.rows]
            assert [k for k in rows if k[0] == "w"] == [
                ("w", w) for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
            ]


def test_first_frame_does_not_wait_for_a_slow_prometheus(live_prom):
    with FaultProxy(live_prom, slow_s=6) as proxy:
        proxy.mode = "slow"
        config = parse(f'[prometheus]\nurl = "{proxy.url}"\ntimeout_s = 5\n' + SLO)
        started = time.monotonic()
        engine = make_engine(config, read_only=True)
        try:
            frame = engine.tick()
            assert time.monotonic() - started < 2.5  # well under the 5 s timeout
            assert frame.slo[0].state == "no_data" and frame.slo[0].reason == "waiting for the first query"
        finally:
            engine.close()


def read_only_snapshot(config: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`obs-tui --config CONFIG snapshot --json --read-only --prometheus URL EXTRA...`"""
    return servers.run_obs_tui(
        "--config", str(config), "snapshot", "--json", "--read-only", "--prometheus", url, *extra
    )


def test_snapshot_json_has_the_slo_section(live_prom, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(SLO)
    result = read_only_snapshot(config, live_prom, "--duration", "0.2")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["capabilities"]["prometheus"] == {"ok": True, "reason": "", "state": "ok", "stale_since": None}
    (slo,) = doc["slo"]
    assert slo["name"] == "prom-api" and slo["source"] == "config" and slo["state"] == "ok"
    assert set(slo["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert slo["burn_rates"]["5m"] == 0.0 and slo["sli"] == 1.0 and slo["error_budget_remaining"] == 1.0
    assert [(a["severity"], a["factor"]) for a in slo["alerts"]] == [
        ("page", 14.4),
        ("page", 6.0),
        ("ticket", 3.0),
        ("ticket", 1.0),
    ]
    assert all(a["firing"] is False and a["reachable"] for a in slo["alerts"])
    assert slo["time_to_exhaustion_s"] is None and slo["data_age_s"] < 5
    assert "obs_window" in slo["promql"] and slo["error_ratios"]["30d"] == 0.0


def test_snapshot_with_prometheus_down_says_why(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(SLO)
    result = read_only_snapshot(config, "http://127.0.0.1:9", "--duration", "0.1")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert not doc["capabilities"]["prometheus"]["ok"]
    assert "Connection refused" in doc["capabilities"]["prometheus"]["reason"]
    assert doc["slo"][0]["state"] == "error" and "Connection refused" in doc["slo"][0]["reason"]


def test_bad_slo_file_exits_with_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("version: prometheus/v1\nservice: s\nslos: 3\n")
    config = tmp_path / "c.toml"
    config.write_text(f'slo_files = ["{tmp_path}/*.yaml"]\n')
    result = read_only_snapshot(config, "http://127.0.0.1:9")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "slos must be list" in result.stderr
