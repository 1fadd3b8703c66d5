#!/usr/bin/env python3
"""UI cost of obs-tui against htop and glances (issue 2, item 8).

Each tool runs in turn, at a 1 s refresh, in its own detached tmux session sized 120x40, under the
same process load (idle `sleep` children topping the host up to --procs processes). For each tool:

  cpu%      CPU time of the tool's process tree (utime+stime+cutime+cstime from /proc/PID/stat)
            over the measured window, as a percentage of one core;
  rss_MB    RSS summed over the process tree, mean of one sample a second over the window;
  term_B/s  bytes the tool wrote to its terminal: tmux `pipe-pane -o 'cat >> FILE'` on the pane
            over the measured window (what tmux read from the pty master, before tmux's own
            rendering), divided by the window's length.

Then the time from launching `obs-tui --read-only` to its first full frame: the pane is polled with
`tmux capture-pane -p` every --poll-ms until the screen shows a process table (a header line
with PID and at least --ready-rows rows under it starting with a PID), reported in ms from the
moment `tmux new-session` was called (interpreter start-up and imports included).

With --rounds N the tools run in a rotated order each round and the table shows medians; ratios
are obs-tui's median over the other tool's median, from the same run.

eBPF programs run in the context of the traced processes, so their cost is not in the obs-tui
row; only the user-space side (bcc/LLVM, map reads, the UI) is.

Run from the repo root:  .venv/bin/python bench/ui_cost.py [--rounds 3] [--warmup 10 --measure 30]
Cleans up its tmux server (own socket) and its sleepers on exit, Ctrl-C and SIGTERM; sleepers also
die with this process (PR_SET_PDEATHSIG) should it be killed outright.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import psutil

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCKET = f"ui_cost_{os.getpid()}"
PR_SET_PDEATHSIG = 1


# ---------------------------------------------------------------------------------------- tmux


def tmux(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def tmux_kill_server() -> None:
    subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)
    sock = os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", SOCKET)
    try:
        os.unlink(sock)
    except OSError:
        pass


def start_pane(session: str, argv: list[str], env: dict[str, str], cols: int, rows: int) -> int:
    """Start argv as the only pane of a new detached session; return the pane's PID."""
    env_args: list[str] = []
    for key, value in env.items():
        env_args += ["-e", f"{key}={value}"]
    # argv given as separate words: tmux execs it directly (no shell), so pane_pid is the tool.
    tmux("new-session", "-d", "-s", session, "-x", str(cols), "-y", str(rows), *env_args, "--", *argv)
    tmux("set-option", "-t", session, "remain-on-exit", "on")
    return int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())


def pane_dead(session: str) -> bool:
    out = tmux("display-message", "-p", "-t", session, "#{pane_dead}", check=False).strip()
    return out != "0"


def capture(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session, check=False)


def kill_session(session: str, pids: list[int]) -> None:
    tmux("kill-session", "-t", session, check=False)
    deadline = time.monotonic() + 3
    for pid in pids:
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


# ---------------------------------------------------------------------------------------- /proc


def tree(root: int) -> list[int]:
    try:
        proc = psutil.Process(root)
        return [root] + [c.pid for c in proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_ticks(pid: int) -> int:
    """utime+stime+cutime+cstime: children reaped during the window are then counted once."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rindex(b")") + 2 :].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11
    return sum(int(x) for x in fields[11:15])


def tree_ticks(pids: list[int]) -> dict[int, int]:
    return {pid: cpu_ticks(pid) for pid in pids}


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


# ---------------------------------------------------------------------------------------- load


class Sleepers:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    @staticmethod
    def _die_with_parent() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def top_up(self, target: int) -> None:
        """Add sleepers, or stop some of ours, so the host has `target` processes (other work on
        the host comes and goes between tools)."""
        sleep = shutil.which("sleep") or "/bin/sleep"
        need = target - count_processes()
        while need < 0 and self.procs:
            p = self.procs.pop()
            p.kill()
            p.wait()
            need += 1
        for _ in range(max(0, need)):
            self.procs.append(
                subprocess.Popen(
                    [sleep, "infinity"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=self._die_with_parent,
                )
            )

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()


def wait_quiet(threshold: float, max_wait: float) -> float:
    """Wait (up to max_wait s) for a 2 s stretch with the host below threshold % busy, so other
    work on a shared machine does not land in one tool's window only. Returns the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        b0 = host_busy()
        time.sleep(2.0)
        b1 = host_busy()
        pct = 100.0 * (b1[0] - b0[0]) / max(1, b1[1] - b0[1])
        if pct < threshold or time.monotonic() >= deadline:
            return pct
        print(f"#   host {pct:.0f} % busy, waiting for < {threshold:g} %", file=sys.stderr, flush=True)


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--", "obs_tui"], capture_output=True, text=True
        ).stdout.strip()
        return head + (" + uncommitted changes in obs_tui/" if dirty else "")
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    cpu_pct: float
    rss_mb: float
    term_bps: float
    procs: int
    host_pct: float  # busy % of all cores over the window, this tool included


def host_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals[:8]) - idle, sum(vals[:8])


@dataclass
class Tool:
    name: str
    argv: list[str]
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def measure(tool: Tool, args, env: dict[str, str], workdir: str) -> Sample | None:
    session = re.sub(r"[^A-Za-z0-9_-]", "_", tool.name)
    pane_pid = start_pane(session, tool.argv, env, args.cols, args.rows)
    known: set[int] = {pane_pid}
    try:
        time.sleep(args.warmup)
        if pane_dead(session):
            tool.errors.append(f"exited during warm-up; screen:\n{capture(session).rstrip()}")
            return None
        out = os.path.join(workdir, f"{session}.term")
        open(out, "wb").close()
        tmux("pipe-pane", "-o", "-t", session, f"cat >> {shlex.quote(out)}")
        time.sleep(0.2)  # let cat start before the window opens
        pids = tree(pane_pid)
        known.update(pids)
        size0 = os.path.getsize(out)
        t0 = time.monotonic()
        busy0 = host_busy()
        start = tree_ticks(pids)
        rss: list[int] = []
        procs: list[int] = []
        end_at = t0 + args.measure
        while True:
            now = time.monotonic()
            if now >= end_at:
                break
            pids = tree(pane_pid)
            known.update(pids)
            rss.append(sum(rss_bytes(p) for p in pids))
            procs.append(count_processes())
            time.sleep(min(1.0, end_at - now))
        pids = tree(pane_pid)
        known.update(pids)
        end = tree_ticks(pids)
        busy1 = host_busy()
        t1 = time.monotonic()
        time.sleep(0.05)  # what the tool wrote before t1 reaches the file
        size1 = os.path.getsize(out)
        tmux("pipe-pane", "-t", session, check=False)  # no command: close the pipe
        if args.keep_term:
            os.makedirs(args.keep_term, exist_ok=True)
            n = len(tool.samples) + 1
            shutil.copyfile(out, os.path.join(args.keep_term, f"{session}-{n}.term"))
        if pane_dead(session):
            tool.errors.append(f"exited during the window; screen:\n{capture(session).rstrip()}")
            return None
        ticks = sum(end.values()) - sum(start.get(p, 0) for p in end)
        elapsed = t1 - t0
        return Sample(
            cpu_pct=100.0 * ticks / CLK_TCK / elapsed,
            rss_mb=statistics.mean(rss) / 1e6 if rss else 0.0,
            term_bps=(size1 - size0) / elapsed,
            procs=round(statistics.median(procs)) if procs else count_processes(),
            host_pct=100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
        )
    finally:
        kill_session(session, sorted(known))


HEADER = re.compile(r"\bPID\b")
NUMBER = re.compile(r"\d+")


def screen_ready(text: str, min_rows: int) -> bool:
    """A full frame: a header line with a PID column and at least min_rows lines under it with a
    number in that column (right- or left-aligned numbers both overlap the header's span)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for h in HEADER.finditer(line):
            lo, hi = h.start(), h.end()
            rows = 0
            for ln in lines[i + 1 :]:
                if any(
                    m.start() < hi + 1 and m.end() > lo - 1 and m.end() - m.start() >= 1
                    for m in NUMBER.finditer(ln)
                    if (m.start() == 0 or not ln[m.start() - 1].isalnum() and ln[m.start() - 1] not in ".:")
                    and (m.end() == len(ln) or not ln[m.end()].isalnum() and ln[m.end()] not in ".:%")
                ):
                    rows += 1
            if rows >= min_rows:
                return True
    return False


def first_frame(argv: list[str], args, env: dict[str, str]) -> tuple[float | None, str]:
    session = "first_frame"
    t0 = time.monotonic()
    pane_pid = start_pane(session, argv, env, args.cols, args.rows)
    known = {pane_pid}
    screen = ""
    try:
        deadline = t0 + args.first_frame_timeout
        while time.monotonic() < deadline:
            screen = capture(session)
            if screen_ready(screen, args.ready_rows):
                return (time.monotonic() - t0) * 1000.0, screen
            if pane_dead(session):
                return None, screen
            known.update(tree(pane_pid))
            time.sleep(args.poll_ms / 1000.0)
        return None, screen
    finally:
        known.update(tree(pane_pid))
        kill_session(session, sorted(known))


# ---------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring (10)")
    p.add_argument("--measure", type=float, default=30.0, help="measured window in seconds (30)")
    p.add_argument("--rounds", type=int, default=1, help="rounds, tool order rotated; medians (1)")
    p.add_argument("--procs", type=int, default=375, help="top the host up to this many processes")
    p.add_argument("--cols", type=int, default=120)
    p.add_argument("--rows", type=int, default=40)
    p.add_argument(
        "--obs-tui", default=os.path.join(REPO, ".venv", "bin", "obs-tui"), help="obs-tui executable"
    )
    p.add_argument(
        "--tools",
        default="htop,glances,obs-tui,obs-tui-ro",
        help="comma list of htop, glances, obs-tui (default mode: eBPF when root), obs-tui-ro (--read-only)",
    )
    p.add_argument("--term", default="tmux-256color", help="TERM inside the panes")
    p.add_argument("--colorterm", default="truecolor", help="COLORTERM inside the panes ('' unsets)")
    p.add_argument("--no-first-frame", action="store_true", help="skip the first-frame timing")
    p.add_argument(
        "--first-frame-tools",
        default="obs-tui-ro",
        help="tools whose launch-to-first-frame time is measured (obs-tui-ro)",
    )
    p.add_argument("--first-frame-runs", type=int, default=3, help="launches; median reported (3)")
    p.add_argument("--first-frame-timeout", type=float, default=20.0)
    p.add_argument("--poll-ms", type=float, default=20.0)
    p.add_argument(
        "--ready-rows", type=int, default=5, help="process rows under a PID header that make a full frame (5)"
    )
    p.add_argument(
        "--quiet-below",
        type=float,
        default=30.0,
        help="before each tool, wait for the host to be under this %% busy (30; 100 = off)",
    )
    p.add_argument(
        "--quiet-wait", type=float, default=120.0, help="longest wait for a quiet host, seconds (120)"
    )
    p.add_argument(
        "--keep-term", metavar="DIR", help="keep each window's terminal bytes as DIR/<tool>-<round>.term"
    )
    p.add_argument("--show-screen", action="store_true", help="print the first-frame screen")
    p.add_argument(
        "--traffic",
        action="store_true",
        help="real nginx + Python servers under ~250 req/s for every tool, so obs-tui's "
        "Requests pane is live and changing (tests/servers.traffic)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="run `obs-tui demo`'s parts (shop under load, agent, Prometheus with three "
        "SLOs) for the whole run and give obs-tui its config: all four panes live",
    )
    return p.parse_args(argv)


def known_tools(args) -> dict[str, list[str]]:
    config = ["--config", args.demo_config] if getattr(args, "demo_config", None) else []
    return {
        "htop": ["htop", "-d", "10"],
        "glances": ["glances", "-t", "1"],
        "obs-tui": [args.obs_tui, "--interval", "1", *config],
        "obs-tui-ro": [args.obs_tui, "--interval", "1", "--read-only", *config],
    }


def build_tools(args) -> list[Tool]:
    known = known_tools(args)
    names = [n.strip() for n in args.tools.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"ui_cost: unknown tool(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [Tool(n, known[n]) for n in names]


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def median_of(tool: Tool, attr: str) -> float | None:
    vals = [getattr(s, attr) for s in tool.samples]
    return statistics.median(vals) if vals else None


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def report(tools: list[Tool], args, ff: dict[str, tuple[list[float], int]]) -> str:
    lines = []
    lines.append(f"# obs-tui at {git_state()}")
    lines.append(
        f"# {args.cols}x{args.rows} tmux pane, 1 s refresh, ~{args.procs} processes, "
        f"warm-up {args.warmup:g} s, window {args.measure:g} s, rounds {args.rounds}, "
        f"TERM={args.term} COLORTERM={args.colorterm or '(unset)'}"
        + (", HTTP traffic: nginx + Python servers, ~250 req/s" if args.traffic else "")
        + (", demo running (shop ~40 req/s, agent, Prometheus, 3 SLOs): all panes live" if args.demo else "")
    )
    lines.append(
        "# cpu% = one core, tool's process tree (/proc/PID/stat); rss = tree sum; "
        "term = tmux pipe-pane bytes (pty output);\n"
        "# host% = busy share of all cores in the window (tool included): other work on the host shows here"
    )
    lines.append(
        f"{'tool':<12}{'cpu%':>7}{'rss_MB':>9}{'term_B/s':>10}{'procs':>7}{'host%':>7}"
        "  per-round cpu% / term_B/s"
    )
    for t in tools:
        per = " ".join(f"{s.cpu_pct:.2f}/{s.term_bps:.0f}" for s in t.samples)
        lines.append(
            f"{t.name:<12}{fmt(median_of(t, 'cpu_pct'), '.2f'):>7}"
            f"{fmt(median_of(t, 'rss_mb'), '.1f'):>9}{fmt(median_of(t, 'term_bps'), '.0f'):>10}"
            f"{fmt(median_of(t, 'procs'), '.0f'):>7}{fmt(median_of(t, 'host_pct'), '.1f'):>7}  {per}"
        )
    by = {t.name: t for t in tools}
    for mine in ("obs-tui", "obs-tui-ro"):
        if mine not in by:
            continue
        parts = []
        for other in ("htop", "glances"):
            if other in by:
                parts.append(
                    f"{mine}/{other}: cpu {ratio(median_of(by[mine], 'cpu_pct'), median_of(by[other], 'cpu_pct'))}, "
                    f"rss {ratio(median_of(by[mine], 'rss_mb'), median_of(by[other], 'rss_mb'))}, "
                    f"term {ratio(median_of(by[mine], 'term_bps'), median_of(by[other], 'term_bps'))}"
                )
        if parts:
            lines.append("ratio " + " ; ".join(parts))
    for name, (times, failed) in ff.items():
        label = {"obs-tui-ro": "obs-tui --read-only", "obs-tui": "obs-tui (eBPF)"}.get(name, name)
        if times:
            lines.append(
                f"first frame: {statistics.median(times):.0f} ms ({label}, median of {len(times)}: "
                f"{', '.join(f'{x:.0f}' for x in times)} ms)"
                + (
                    f"; {failed} launch(es) showed no frame in {args.first_frame_timeout:g} s"
                    if failed
                    else ""
                )
            )
        else:
            lines.append(f"first frame: none within {args.first_frame_timeout:g} s ({label})")
    for t in tools:
        for e in t.errors:
            lines.append(f"! {t.name}: {e}")
    return "\n".join(lines)


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for exe in ("tmux",):
        if not shutil.which(exe):
            sys.exit(f"ui_cost: {exe} not found (apt-get install -y htop glances tmux)")
    env = {"TERM": args.term, "COLORTERM": args.colorterm, "LANG": os.environ.get("LANG", "C.UTF-8")}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    sleepers = Sleepers()
    ff: dict[str, tuple[list[float], int]] = {}
    workdir = tempfile.mkdtemp(prefix="ui_cost_")
    load = contextlib.ExitStack()
    try:
        if args.traffic:
            sys.path.insert(0, REPO)
            from tests.servers import traffic

            load.enter_context(traffic())
        if args.demo:
            sys.path.insert(0, REPO)
            from obs_tui import demo

            running = load.enter_context(demo.running())
            args.demo_config = str(running.config_path)
        tools = build_tools(args)
        # A server with no session would exit at once; a placeholder session keeps it (and its
        # environment) up for the whole run.
        tmux("new-session", "-d", "-s", "keepalive", "-x", "20", "-y", "5", "--", "sleep", "infinity")
        base = count_processes()
        sleepers.top_up(args.procs)
        print(
            f"# {base} processes before, {len(sleepers.procs)} sleepers added -> {count_processes()}",
            file=sys.stderr,
            flush=True,
        )
        for r in range(args.rounds):
            order = tools[r % len(tools) :] + tools[: r % len(tools)]
            for tool in order:
                print(
                    f"# round {r + 1}/{args.rounds}: {tool.name} ({' '.join(tool.argv)})",
                    file=sys.stderr,
                    flush=True,
                )
                sleepers.top_up(args.procs)
                if args.quiet_below < 100:
                    wait_quiet(args.quiet_below, args.quiet_wait)
                s = measure(tool, args, env, workdir)
                if s:
                    tool.samples.append(s)
                    print(
                        f"#   cpu {s.cpu_pct:.2f} %  rss {s.rss_mb:.1f} MB  term {s.term_bps:.0f} B/s  "
                        f"procs {s.procs}  host busy {s.host_pct:.1f} %",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    print(f"#   failed: {tool.errors[-1].splitlines()[0]}", file=sys.stderr, flush=True)
        if not args.no_first_frame:
            for name in [n.strip() for n in args.first_frame_tools.split(",") if n.strip()]:
                argv_ff = known_tools(args)[name]
                times: list[float] = []
                failed = 0
                for i in range(args.first_frame_runs):
                    ms, screen = first_frame(argv_ff, args, env)
                    print(
                        f"# first frame {name} run {i + 1}: {fmt(ms, '.0f')} ms", file=sys.stderr, flush=True
                    )
                    if ms is None:
                        failed += 1
                        print(screen, file=sys.stderr)
                    else:
                        times.append(ms)
                    if args.show_screen and i == 0:
                        print(screen, file=sys.stderr)
                ff[name] = (times, failed)
        print(report(tools, args, ff), flush=True)
        return 0
    except KeyboardInterrupt:
        print("ui_cost: interrupted, cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the clean-up
        load.close()
        tmux_kill_server()
        sleepers.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
