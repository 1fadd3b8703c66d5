"""Requests lost after the agent says it is ready: wrk at full speed against nginx, started the
moment `obs-tui agent` answers /-/ready with 200, and what each side counted.

    sudo .venv/bin/python bench/ready_loss.py [--rounds 3] [--duration 10] [--connections 64]

Each round starts nginx (tests/servers.py), then the agent, polls /-/ready until 200, runs wrk
for --duration seconds (two threads and --connections keep-alive connections: the highest rate
nginx reaches on this host), and then compares, side by side:

    wrk     responses wrk received (it does not count those in flight when it stops)
    nginx   requests nginx served (its stub_status counter, less the bench's own status request)
    agent   requests the agent published for nginx's `/` on /metrics, once two scrapes agree
    lost    obs_red_lost_events_total: what the probe saw but could not record
    missed  nginx - agent: requests answered after ready that the agent neither counted nor
            flagged as lost (the target is 0)

Figures from a loaded or shared host say little about the rate; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.parser import text_string_to_metric_families

from tests.servers import agent_command, free_port, nginx


@dataclass
class Round:
    ready_s: float
    rps: float
    wrk: int
    nginx: int
    agent: int
    lost: int

    @property
    def missed(self) -> int:
        return self.nginx - self.agent


def wrk(port: int, seconds: float, connections: int) -> tuple[int, float]:
    """(responses, requests/s) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    count = int(re.search(r"(\d+) requests in", out).group(1))
    return count, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def nginx_served(port: int) -> int:
    """nginx's own count of the requests it has handled, this status request included."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5) as r:
        return int(re.search(rb"\n\s*\d+\s+\d+\s+(\d+)", r.read()).group(1))


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def published(metrics_url: str) -> tuple[int, int]:
    """(requests the agent published for nginx's `/`, lost events of every reason)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as r:
        text = r.read().decode()
    count = lost = 0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if (
                s.name == "http_server_request_duration_seconds_count"
                and s.labels.get("service_name", "").startswith("nginx:")
                and s.labels.get("http_route") == "/"
            ):
                count += int(s.value)
            elif s.name == "obs_red_lost_events_total":
                lost += int(s.value)
    return count, lost


@contextlib.contextmanager
def agent(tmp: Path, interval: float):
    port = free_port()
    conf = tmp / "agent.toml"
    conf.write_text("")
    log = (tmp / "agent.log").open("w")
    proc = subprocess.Popen(
        agent_command(conf, port, interval),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def one_round(seconds: float, connections: int, interval: float) -> Round:
    with tempfile.TemporaryDirectory() as tmp, nginx(Path(tmp)) as server:
        with agent(Path(tmp), interval) as (base, proc):
            started = time.monotonic()
            while status(f"{base}/-/ready") != 200:
                if proc.poll() is not None:
                    raise SystemExit(f"the agent exited: {(Path(tmp) / 'agent.log').read_text()}")
                if time.monotonic() - started > 120:
                    raise SystemExit("the agent never answered /-/ready with 200")
                time.sleep(0.02)
            ready_s = time.monotonic() - started
            before = nginx_served(server.port)
            responses, rps = wrk(server.port, seconds, connections)
            served = nginx_served(server.port) - before - 1  # less the second status request
            counts = [published(f"{base}/metrics")]
            while True:  # until two scrapes a tick or more apart agree
                time.sleep(interval * 1.5)
                counts.append(published(f"{base}/metrics"))
                if counts[-1] == counts[-2]:
                    break
            counted, lost = counts[-1]
    return Round(ready_s, rps, responses, served, counted, lost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--interval", type=float, default=1.0, help="the agent's interval")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("ready_loss: run as root (the agent loads eBPF probes)")
    print(
        f"{'round':>5} {'ready s':>8} {'req/s':>9} {'wrk':>9} {'nginx':>9} {'agent':>9} "
        f"{'lost':>6} {'missed':>7}"
    )
    rounds = []
    for i in range(args.rounds):
        r = one_round(args.duration, args.connections, args.interval)
        rounds.append(r)
        print(
            f"{i + 1:>5} {r.ready_s:>8.2f} {r.rps:>9.0f} {r.wrk:>9} {r.nginx:>9} {r.agent:>9} "
            f"{r.lost:>6} {r.missed:>7}",
            flush=True,
        )
    total = sum(r.missed for r in rounds)
    print(
        f"missed after ready in {len(rounds)} rounds: {total} of {sum(r.nginx for r in rounds)} "
        f"requests (lost events: {sum(r.lost for r in rounds)})"
    )


if __name__ == "__main__":
    main()
