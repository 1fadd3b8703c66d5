"""`obs-tui demo`: a live system to look at on a fresh machine, all on 127.0.0.1.

Starts, each in its own process and in a temp dir: the sample shop (demo_service.py), its
load generator, `obs-tui agent` (probes + /metrics), and Debian's Prometheus scraping the
agent every 2 s; writes a config with the shop's routes and three SLOs over the agent's
metrics; then opens the console on that config (or, with --headless, waits). Everything it
started is stopped on the way out: a normal exit, q, Ctrl-C, SIGTERM/SIGHUP and errors all
pass through one `finally`, and each child also gets SIGTERM from the kernel should the demo
itself be killed outright (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from obs_tui.demo_service import SERVICE_NAME

PROMETHEUS_ENV = "OBS_TUI_PROMETHEUS"  # another prometheus binary than the one on PATH
SCRAPE_S = 2
SLOS = """
[[slo]]
name = "shop-availability"
description = "demo-shop answers without a 5xx"
objective = 0.99
error_query = 'sum(rate(http_server_request_duration_seconds_count{{service_name="{svc}",http_response_status_code=~"5.."}}[{{{{.window}}}}]))'
total_query = 'sum(rate(http_server_request_duration_seconds_count{{service_name="{svc}"}}[{{{{.window}}}}]))'

[[slo]]
name = "checkout-availability"
description = "POST /api/checkout succeeds (its payment call fails 4 % of the time)"
objective = 0.995
error_query = 'sum(rate(http_server_request_duration_seconds_count{{service_name="{svc}",http_route="/api/checkout",http_response_status_code=~"5.."}}[{{{{.window}}}}]))'
total_query = 'sum(rate(http_server_request_duration_seconds_count{{service_name="{svc}",http_route="/api/checkout"}}[{{{{.window}}}}]))'

[[slo]]
name = "search-latency"
description = "GET /api/search answers within 100 ms"
objective = 0.95
error_query = 'sum(rate(http_server_request_duration_seconds_count{{service_name="{svc}",http_route="/api/search"}}[{{{{.window}}}}])) - sum(rate(http_server_request_duration_seconds_bucket{{service_name="{svc}",http_route="/api/search",le="0.1"}}[{{{{.window}}}}]))'
total_query = 'sum(rate(http_server_request_duration_seconds_count{{service_name="{svc}",http_route="/api/search"}}[{{{{.window}}}}]))'
"""


class DemoError(Exception):
    """Something the demo needs is missing or failed to start: one line for the user."""


@dataclass(frozen=True)
class Demo:
    directory: Path
    shop_url: str
    metrics_url: str
    prometheus_url: str
    config_path: Path
    pids: tuple[int, ...]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the demo dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"demo: {what} exited with status {proc.returncode}: {_last_line(proc)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise DemoError(f"demo: {what} did not answer {url} within {timeout:g} s")


def _last_line(proc: subprocess.Popen) -> str:
    """The last line the child logged (its log goes with the temp dir)."""
    try:
        lines = Path(proc.log).read_text(errors="replace").strip().splitlines()  # type: ignore[attr-defined]
    except OSError:
        return "no output"
    return lines[-1][:200] if lines else "no output"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)  # the agent detaches its probes first (~1 s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prometheus_binary() -> str:
    name = os.environ.get(PROMETHEUS_ENV, "prometheus")
    found = shutil.which(name)
    if found is None:
        raise DemoError(
            f"demo: {name} not found: apt install prometheus (Debian's package), "
            f"or set ${PROMETHEUS_ENV} to its path"
        )
    return found


def write_config(directory: Path, prometheus_url: str) -> Path:
    path = directory / "config.toml"
    path.write_text(
        "interval = 1.0\n"
        f'[prometheus]\nurl = "{prometheus_url}"\ntimeout_s = 3\nrefresh_s = 5\n'
        '[red]\nroutes = ["/api/products/{id}"]\n' + SLOS.format(svc=SERVICE_NAME)
    )
    return path


@contextlib.contextmanager
def running(rps: float = 40.0, notice: Callable[[str], None] = lambda line: None) -> Iterator[Demo]:
    """Start everything; yield the Demo; stop everything and remove the temp dir, whatever
    happens. `notice` gets one-line progress and warnings."""
    binary = prometheus_binary()
    directory = Path(tempfile.mkdtemp(prefix="obs-tui-demo-"))
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(directory / f"{name}.log", "wb")
        try:
            proc = subprocess.Popen(
                args,
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env=None if env is None else {**os.environ, **env},
            )
        finally:
            log.close()
        proc.log = str(directory / f"{name}.log")  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    try:
        notice(f"demo: working in {directory}")
        if os.geteuid() != 0:
            notice(
                "demo: not root, so the agent loads no probes and the Requests pane stays "
                "empty: run it with sudo for the full demo"
            )
        shop_port, agent_port, prom_port = _free_port(), _free_port(), _free_port()
        python = sys.executable
        # Named as an OpenTelemetry SDK would name it: the agent reads OTEL_SERVICE_NAME.
        shop = start(
            [python, "-m", "obs_tui.demo_service", "serve", str(shop_port)],
            "shop",
            {"OTEL_SERVICE_NAME": SERVICE_NAME},
        )
        shop_url = f"http://127.0.0.1:{shop_port}"
        _wait_http(f"{shop_url}/health", shop, "the sample shop", 15)
        start([python, "-m", "obs_tui.demo_service", "load", str(shop_port), f"{rps:g}"], "load")
        prometheus_url = f"http://127.0.0.1:{prom_port}"
        config = write_config(directory, prometheus_url)
        agent = start(
            [
                python,
                "-m",
                "obs_tui",
                "--config",
                str(config),
                "agent",
                "--listen",
                f"127.0.0.1:{agent_port}",
            ],
            "agent",
        )
        metrics_url = f"http://127.0.0.1:{agent_port}/metrics"
        _wait_http(f"http://127.0.0.1:{agent_port}/-/ready", agent, "obs-tui agent", 60)
        (directory / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {SCRAPE_S}s\n  evaluation_interval: {SCRAPE_S}s\n"
            f"scrape_configs:\n  - job_name: obs-tui\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{agent_port}']\n"
        )
        prom = start(
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            "prometheus",
        )
        _wait_http(f"{prometheus_url}/-/ready", prom, "prometheus", 60)
        notice(f"demo: shop {shop_url}, metrics {metrics_url}, prometheus {prometheus_url}")
        yield Demo(directory, shop_url, metrics_url, prometheus_url, config, tuple(p.pid for p in procs))
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(directory, ignore_errors=True)


def _exit_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, through running()'s cleanup."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def run(open_console: Callable[[Demo], int], headless: bool, seconds: float | None, rps: float) -> int:
    """The `obs-tui demo` command: the console over the demo, or --headless until a signal."""

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    _exit_on_signals()
    try:
        with running(rps, notice=say) as demo:
            if not headless:
                return open_console(demo)
            say("demo: ready (Ctrl-C to stop)")
            deadline = None if seconds is None else time.monotonic() + seconds
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
            return 0
    except KeyboardInterrupt:
        return 0
