"""Cost and exactness of the RED probe: wrk against nginx on loopback, with and without
obs-tui's probes attached, alternating in the same run.

    sudo .venv/bin/python bench/red_overhead.py [--rounds 8] [--duration 4]

This machine's throughput drifts by tens of percent within a minute (shared host), so each
round is a pair of adjacent runs (order flipped every round) and the ratios are medians of
the per-pair ratios. nginx's CPU time per request (its worker's utime+stime over the requests
it served) is reported too: it is what the probe adds to the server, and is far steadier than
throughput under noisy neighbours.

Each round also has a FLOOR run. `--floor syscall` (default): one empty program on
syscalls:sys_exit_getppid, a syscall nothing here makes. Attaching any syscall tracepoint puts
every task's syscalls through the kernel's slow path, so that run is the least any
syscall-tracepoint probe can cost on this kernel (the design bpf/red.c had until it moved to
the socket tracepoints, which have no such tax). `--floor socket`: empty programs on the two
socket tracepoints red.c uses, the least any probe there can cost before it reads a byte;
"with / floor" is then the cost of red.c's own work. `--floor locate`: red.c stopped as soon as
it has found the user buffer a server reads or writes (RED_LOCATE_ONLY), before any parsing or
map: the least any probe that looks at HTTP bytes from these tracepoints can cost.

Exactness is checked against nginx's own counter (stub_status `requests`), not against wrk,
which does not count the requests still in flight when it stops.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from obs_tui.analysis.red import red_section
from obs_tui.sources.procs import CLOCK_TICKS, parse_stat
from obs_tui.sources.red import BPF_SOURCE, RedSource
from tests.servers import nginx

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Run:
    rps: float
    p99_ms: float
    served: int  # by nginx's own count, including the one status request that ends the run
    cpu_us_per_request: float
    counted: int = -1  # by the probe
    lost: int = 0
    load_s: float = 0.0


def wrk(port: int, seconds: float, connections: int) -> tuple[float, float]:
    """(requests/s, p99 ms) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rps, float(value) * UNITS[unit]


def nginx_requests(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5) as r:
        return int(re.search(rb"\n\s*\d+\s+\d+\s+(\d+)", r.read()).group(1))


def cpu_seconds(pid: int) -> float:
    _, ticks, _, _ = parse_stat(Path(f"/proc/{pid}/stat").read_bytes())
    return ticks / CLOCK_TICKS


def measured(port: int, pid: int, seconds: float, connections: int) -> Run:
    start, cpu = nginx_requests(port), cpu_seconds(pid)
    rps, p99 = wrk(port, seconds, connections)
    cpu = cpu_seconds(pid) - cpu
    served = nginx_requests(port) - start + 1  # + the first status request itself
    return Run(rps, p99, served, cpu / served * 1e6)


def probed(port: int, pid: int, seconds: float, connections: int, bpf_source: Path | None = None) -> Run:
    source = RedSource(bpf_source=bpf_source) if bpf_source else RedSource()
    cap = source.available()
    if not cap.ok:
        sys.exit(f"probe unavailable: {cap.reason}")
    try:
        before = source.sample(time.time())
        run = measured(port, pid, seconds, connections)
        time.sleep(0.2)
        section = red_section(before, source.sample(time.time()), seconds)
        run.counted = sum(s.requests for s in section.services if s.pid == pid)
        run.lost, run.load_s = section.lost_events, source.load_seconds
        if run.lost:
            print(f"lost by cause: {dict(section.lost_reasons)}", flush=True)
        return run
    finally:
        source.close()


FLOORS = {
    # any syscall tracepoint: the least a syscall-tracepoint probe can cost
    "syscall": (
        "empty program on syscalls:sys_exit_getppid",
        b"TRACEPOINT_PROBE(syscalls, sys_exit_getppid) { return 0; }",
        False,
    ),
    # the two socket tracepoints red.c runs on, doing nothing: the least any probe at the
    # socket layer can cost, before it looks at a single byte
    "socket": (
        "empty programs on sock_recv_length and sock_send_length",
        b"RAW_TRACEPOINT_PROBE(sock_recv_length) { return 0; }\n"
        b"RAW_TRACEPOINT_PROBE(sock_send_length) { return 0; }",
        False,
    ),
    # red.c itself, servers marked, up to finding the user buffer (the saved registers, and
    # for writev/sendmsg the iovec read from user memory), then no parsing and no map: the
    # least any probe that reads the bytes a server sends can cost. Loaded through RedSource,
    # which marks the servers and arms the probe; bcc finds the tracepoints in the text, so
    # the define goes in front of it rather than around an #include.
    "locate": (
        "red.c stopped once the user buffer is found (RED_LOCATE_ONLY)",
        b"#define RED_LOCATE_ONLY\n" + BPF_SOURCE.read_bytes(),
        True,
    ),
}
# FLOORS: name -> (what it is, the program, whether it runs through RedSource)


def floored(port: int, pid: int, seconds: float, connections: int, program: bytes, through_red: bool) -> Run:
    if through_red:
        with tempfile.NamedTemporaryFile(suffix=".c") as variant:
            variant.write(program)
            variant.flush()
            return probed(port, pid, seconds, connections, Path(variant.name))
    from obs_tui.bcc_setup import import_bcc

    bpf = import_bcc(notice=lambda line: None).BPF(text=program)
    try:
        return measured(port, pid, seconds, connections)
    finally:
        bpf.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--floor", choices=sorted(FLOORS), default="syscall")
    parser.add_argument(
        "--bpf-source",
        type=Path,
        default=None,
        help="a variant of bpf/red.c to measure instead (experiments)",
    )
    args = parser.parse_args()
    floor_name, floor_program, floor_through_red = FLOORS[args.floor]
    if os.geteuid() != 0:
        sys.exit("needs root (eBPF)")
    pairs: list[tuple[Run, Run]] = []
    floors: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp, nginx(Path(tmp)) as srv:
        wrk(srv.port, 1, args.connections)  # warm up
        for i in range(args.rounds):
            plain = lambda: measured(srv.port, srv.pid, args.duration, args.connections)  # noqa: E731
            traced = lambda: probed(  # noqa: E731
                srv.port,
                srv.pid,
                args.duration,
                args.connections,
                args.bpf_source,
            )
            floor = lambda: floored(  # noqa: E731
                srv.port,
                srv.pid,
                args.duration,
                args.connections,
                floor_program,
                floor_through_red,
            )
            # The floor sits between the two; the order flips so drift does not favour one side.
            if i % 2:
                w = traced()
                f = floor()
                b = plain()
            else:
                b = plain()
                f = floor()
                w = traced()
            pairs.append((b, w))
            floors.append(f)
            print(
                f"round {i + 1}: without {b.rps:.0f} req/s p99 {b.p99_ms:.3f} ms "
                f"{b.cpu_us_per_request:.2f} us/req | with {w.rps:.0f} req/s p99 {w.p99_ms:.3f} ms "
                f"{w.cpu_us_per_request:.2f} us/req, load {w.load_s:.2f} s, nginx served {w.served}, "
                f"probe counted {w.counted}, lost {w.lost} | floor {f.rps:.0f} req/s "
                f"{f.cpu_us_per_request:.2f} us/req",
                flush=True,
            )
    med = statistics.median
    ok = [w for _, w in pairs if w.counted == w.served and w.lost == 0]
    print(
        f"throughput: without {med(b.rps for b, _ in pairs):.0f} req/s, with "
        f"{med(w.rps for _, w in pairs):.0f} req/s, paired ratio {med(w.rps / b.rps for b, w in pairs):.3f}"
    )
    print(
        f"p99: without {med(b.p99_ms for b, _ in pairs):.3f} ms, with {med(w.p99_ms for _, w in pairs):.3f} ms, "
        f"paired ratio {med(w.p99_ms / b.p99_ms for b, w in pairs):.3f}"
    )
    print(
        f"nginx CPU per request: without {med(b.cpu_us_per_request for b, _ in pairs):.2f} us, with "
        f"{med(w.cpu_us_per_request for _, w in pairs):.2f} us, paired ratio "
        f"{med(w.cpu_us_per_request / b.cpu_us_per_request for b, w in pairs):.3f}"
    )
    print(
        f"exact counts with zero lost events in {len(ok)}/{len(pairs)} probed runs; highest such rate "
        f"{max((w.rps for w in ok), default=0):.0f} req/s; lost events {sum(w.lost for _, w in pairs)}"
    )
    trios = [(b, f, w) for (b, w), f in zip(pairs, floors)]
    print(
        f"FLOOR ({floor_name}): throughput without "
        f"{med(b.rps for b, _, _ in trios):.0f} / floor {med(f.rps for _, f, _ in trios):.0f} / with "
        f"{med(w.rps for _, _, w in trios):.0f} req/s, paired ratio floor/without "
        f"{med(f.rps / b.rps for b, f, _ in trios):.3f}, with/floor {med(w.rps / f.rps for _, f, w in trios):.3f}; "
        f"CPU per request without {med(b.cpu_us_per_request for b, _, _ in trios):.2f} / floor "
        f"{med(f.cpu_us_per_request for _, f, _ in trios):.2f} / with "
        f"{med(w.cpu_us_per_request for _, _, w in trios):.2f} us, paired ratio floor/without "
        f"{med(f.cpu_us_per_request / b.cpu_us_per_request for b, f, _ in trios):.3f}, with/floor "
        f"{med(w.cpu_us_per_request / f.cpu_us_per_request for _, f, w in trios):.3f}"
    )
    loads = [w.load_s for _, w in pairs]
    print(f"probe load time (compile + attach): median {med(loads):.2f} s, max {max(loads):.2f} s")


if __name__ == "__main__":
    main()
