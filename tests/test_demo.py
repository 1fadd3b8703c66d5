"""`obs-tui demo`: the real demo (shop, load, agent, Debian's Prometheus) starts, serves what
the panes need, and leaves no child process behind: on Ctrl-C, on SIGTERM, when it is killed
outright, and when a part fails to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from obs_tui.config import load
from obs_tui.sources.prometheus import Client

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the demo's agent needs root for its probes")


def start_demo(*args, env=None):
    proc = subprocess.Popen(
        [sys.executable, "-m", "obs_tui", "demo", "--headless", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        # Ctrl-C reaches a program in the foreground with SIGINT's default action; pytest-xdist's
        # workers ignore SIGINT, and an ignored signal is inherited
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.strip())
        if "ready" in line:
            break
    return proc, lines


def workdir(lines) -> Path:
    return Path(next(line for line in lines if "working in" in line).rsplit(" ", 1)[1])


def descendants(pid):
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def all_gone(pids, timeout=20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [
            p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def in_dir(directory: Path) -> list[int]:
    """Processes still working in the demo's temp dir (found even when orphaned)."""
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.cwd().startswith(str(directory)):
                out.append(p.pid)
        except (psutil.Error, OSError):
            continue
    return out


def test_demo_serves_the_panes_and_cleans_up_on_ctrl_c():
    proc, lines = start_demo()
    try:
        assert any("ready" in line for line in lines), lines
        children = descendants(proc.pid)
        assert len(children) >= 4  # shop, load generator, agent, prometheus
        url = next(line for line in lines if "prometheus http" in line).rsplit(" ", 1)[1]
        directory = workdir(lines)
        config = load(str(directory / "config.toml"))
        assert [s["name"] for s in config.slo] == [
            "shop-availability",
            "checkout-availability",
            "search-latency",
        ]
        client = Client(url)

        def routes():
            rows = client.query(
                "sum by (http_route, http_response_status_code) "
                '(http_server_request_duration_seconds_count{service_name="demo-shop"})'
            )
            return {(r["metric"]["http_route"], r["metric"]["http_response_status_code"]) for r in rows}

        deadline = time.monotonic() + 60
        while (
            not {
                ("/api/checkout", "200"),
                ("/api/products/{id}", "200"),
                ("/api/search", "200"),
                ("/api/checkout", "503"),
            }
            <= routes()
        ):
            assert time.monotonic() < deadline, routes()
            time.sleep(1)
        # every SLO's PromQL is valid and has data over a short window (rate needs two scrapes
        # of a series, and a 503 series is born with its first 503)
        for slo in config.slo:
            for key in ("error_query", "total_query"):
                deadline = time.monotonic() + 30
                while not client.query(slo[key].replace("{{.window}}", "1m")):
                    assert time.monotonic() < deadline, (slo["name"], key)
                    time.sleep(1)
        power = client.query("obs_host_power_watts")
        assert power and client.query('obs_process_cpu_joules_total{comm="demo-shop"}')
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    assert all_gone(children) == []
    assert not directory.exists()


def test_sigterm_and_sigkill_leave_no_child():
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc, lines = start_demo("--rps", "5")
        assert any("ready" in line for line in lines), lines
        children = descendants(proc.pid)
        proc.send_signal(sig)
        proc.wait(60)
        # SIGKILL runs no cleanup: the kernel's parent-death signal stops the children
        assert all_gone(children) == [], sig


def test_a_part_that_fails_stops_the_others(tmp_path):
    fake = tmp_path / "prometheus"
    fake.write_text("#!/bin/sh\necho 'bad flag' >&2\nexit 3\n")
    fake.chmod(0o755)
    proc, lines = start_demo(env={"OBS_TUI_PROMETHEUS": str(fake)})
    out, err = proc.communicate(timeout=60)
    lines += err.strip().splitlines()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert any("prometheus exited with status 3: bad flag" in line for line in lines), lines
    directory = workdir(lines)
    assert in_dir(directory) == [] and not directory.exists()


def test_no_prometheus_binary_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "obs_tui", "demo", "--headless"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OBS_TUI_PROMETHEUS": "no-such-prometheus"},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "demo: no-such-prometheus not found: apt install prometheus "
        "(Debian's package), or set $OBS_TUI_PROMETHEUS to its path"
    )
