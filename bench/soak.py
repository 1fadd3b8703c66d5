"""Soak: the real console (as root, so it loads its probes and drops privileges as in
production) runs in a detached tmux pane while nginx answers a steady request rate; the
console's RSS and CPU are sampled every minute, and the run says whether they stayed flat.

    .venv/bin/python bench/soak.py [--minutes 60] [--rate 200] [--warmup 10]

The client is paced (one request every 1/rate s, over keep-alive connections, a fresh one every
--reconnect-every requests, paths cycling over --distinct ids so routes and the probe's path
map see churn): Debian's wrk has no -R. Flat means: after the warm-up, RSS at the end is within
5 % of RSS at the end of the warm-up, and the median CPU of the last third of the minutes is
within 5 % (relative, or 0.5 point absolute for a near-idle console) of the median of the first
third. Host busy % is printed beside each minute: other work on the machine shows up in CPU.

tmux, pane sampling and /proc readers are bench/ui_cost.py's.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import ui_cost  # noqa: E402
from tests import servers  # noqa: E402

LIMIT = 0.05


@dataclass
class Minute:
    minute: int
    rss_mb: float
    cpu_pct: float
    host_pct: float
    sent: int
    failed: int
    uid: str


class PacedClient:
    """GETs at a fixed rate; counts what it sent and what failed."""

    def __init__(self, port: int, rate: float, reconnect_every: int, distinct: int) -> None:
        self.port, self.rate, self.reconnect_every, self.distinct = port, rate, reconnect_every, distinct
        self.sent = self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        conn = None
        i = 0
        while not self.stop.is_set():
            due = start + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            if conn is None or i % self.reconnect_every == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            path = servers.NGINX_PATHS[i % len(servers.NGINX_PATHS)].format(i=i % self.distinct)
            try:
                conn.request("GET", path)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                self.failed += 1
                conn.close()
                conn = None
            self.sent += 1
            i += 1
        if conn is not None:
            conn.close()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--warmup", type=int, default=None, help="minutes (default: 10, or a third of short runs)")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second to nginx")
    p.add_argument("--reconnect-every", type=int, default=100)
    p.add_argument("--distinct", type=int, default=2000, help="distinct ids in the paths")
    p.add_argument("--obs-tui", default=str(REPO / ".venv" / "bin" / "obs-tui"))
    p.add_argument("--cols", type=int, default=120)
    p.add_argument("--rows", type=int, default=40)
    return p.parse_args(argv)


def within(later: float, earlier: float, floor: float = 0.0) -> tuple[bool, float]:
    growth = (later - earlier) / earlier if earlier > 0 else 0.0
    return growth <= LIMIT or later - earlier <= floor, growth


def report(minutes: list[Minute], warmup: int) -> tuple[str, bool]:
    lines = ["minute  rss_MB  cpu_%  host_busy_%  requests  failed  uid"]
    for m in minutes:
        lines.append(
            f"{m.minute:6d}  {m.rss_mb:6.1f}  {m.cpu_pct:5.2f}  {m.host_pct:11.1f}  "
            f"{m.sent:8d}  {m.failed:6d}  {m.uid}"
        )
    after = [m for m in minutes if m.minute > warmup]
    if len(after) < 3:
        lines.append(f"too few minutes after a {warmup} min warm-up to judge growth")
        return "\n".join(lines), False
    base = next(m for m in minutes if m.minute == warmup) if warmup else minutes[0]
    rss_ok, rss_growth = within(after[-1].rss_mb, base.rss_mb)
    third = max(1, len(after) // 3)
    first = statistics.median(m.cpu_pct for m in after[:third])
    last = statistics.median(m.cpu_pct for m in after[-third:])
    cpu_ok, cpu_growth = within(last, first, floor=0.5)
    peak = max(m.rss_mb for m in after)
    lines.append(
        f"RSS after warm-up (min {base.minute}): {base.rss_mb:.1f} MB -> {after[-1].rss_mb:.1f} MB "
        f"at min {after[-1].minute} ({rss_growth:+.1%}, peak {peak:.1f} MB): "
        f"{'flat' if rss_ok else 'GROWS'} (limit +5 %)"
    )
    lines.append(
        f"CPU median, first vs last {third} min after warm-up: {first:.2f} % -> {last:.2f} % "
        f"({cpu_growth:+.1%}): {'flat' if cpu_ok else 'GROWS'} (limit +5 % or +0.5 point)"
    )
    return "\n".join(lines), rss_ok and cpu_ok


def main(argv=None) -> int:
    args = parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(10, args.minutes // 3)
    env = {"TERM": "tmux-256color", "LANG": os.environ.get("LANG", "C.UTF-8")}
    print(
        f"# soak: {args.minutes} min, {args.rate:g} req/s to nginx, warm-up {warmup} min, "
        f"{args.cols}x{args.rows}, git {ui_cost.git_state()}, {ui_cost.count_processes()} processes",
        flush=True,
    )
    minutes: list[Minute] = []
    with tempfile.TemporaryDirectory() as tmp, servers.nginx(Path(tmp)) as web:
        client = PacedClient(web.port, args.rate, args.reconnect_every, args.distinct)
        client.thread.start()
        pid = ui_cost.start_pane("soak", [args.obs_tui, "--interval", "1"], env, args.cols, args.rows)
        try:
            ticks, busy, t0 = ui_cost.cpu_ticks(pid), ui_cost.host_busy(), time.monotonic()
            for minute in range(1, args.minutes + 1):
                time.sleep(max(0.0, t0 + 60 * minute - time.monotonic()))
                if ui_cost.pane_dead("soak"):
                    print("# the console exited:\n" + ui_cost.capture("soak"), flush=True)
                    return 1
                now_ticks, now_busy = ui_cost.cpu_ticks(pid), ui_cost.host_busy()
                cpu = 100.0 * (now_ticks - ticks) / ui_cost.CLK_TCK / 60.0
                host = 100.0 * (now_busy[0] - busy[0]) / max(1, now_busy[1] - busy[1])
                ticks, busy = now_ticks, now_busy
                try:
                    with open(f"/proc/{pid}/status") as f:
                        uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
                except OSError:
                    uid = "?"
                m = Minute(minute, ui_cost.rss_bytes(pid) / 2**20, cpu, host, client.sent, client.failed, uid)
                minutes.append(m)
                print(
                    f"# min {m.minute}: rss {m.rss_mb:.1f} MB  cpu {m.cpu_pct:.2f} %  host {m.host_pct:.1f} %  "
                    f"sent {m.sent}  failed {m.failed}  uid {m.uid}",
                    flush=True,
                )
            screen = ui_cost.capture("soak")
        finally:
            client.stop.set()
            client.thread.join(10)
            ui_cost.kill_session("soak", [pid])
            ui_cost.tmux_kill_server()
    text, flat = report(minutes, warmup)
    print(text)
    print("# last screen:\n" + screen, flush=True)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
