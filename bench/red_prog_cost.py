"""Where the RED probe's time goes: kernel-measured run time of each of its programs per request.

    sudo .venv/bin/python bench/red_prog_cost.py [--duration 4] [--streams 10]

One nginx on loopback with the probe attached and kernel.bpf_stats_enabled=1 (which adds ~2
clock reads per program run to what it measures; reset on exit), loaded in turn by:
HTTP/1.1, wrk -t1 -c32 (the load of bench/red_overhead.py, whose throughput ratio these numbers
explain); and HTTP/2 in the clear, h2load -t1 -c32 -m STREAMS (concurrent streams per
connection). For every program: runs per request, ns per run and ns per request, from the
run_time_ns/run_cnt the kernel reports in the program fds' fdinfo; then the total per request
of each protocol, side by side. A tail call's program runs inside its caller's run: the HTTP/2
frame walk (h2_walk_tp) is counted in sock_recv_length's and sock_send_length's time.

    --server node-https   Node's https module (uprobes on the SSL_* symbols of its binary)
    --server go-https     Go's net/http over crypto/tls, built here (entry and RET uprobes)

For those, wrk speaks HTTPS (HTTP/1.1) to that server alone, which starts before the probe
loads, so its TLS code is found at load. A uprobe's trap into the kernel and back is not part
of a program's run time: these figures are the programs' share only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from obs_tui.sources.red import BPF_SOURCE, RedSource  # noqa: E402
from tests import servers  # noqa: E402

STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def program_stats(fds: dict[int, str]) -> dict[str, tuple[int, int]]:
    """program name -> (run_time_ns, run_cnt) for this process's program fds."""
    out = {}
    for fd, name in fds.items():
        fields = dict(
            line.split(":\t", 1)
            for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines()
            if ":\t" in line
        )
        out[name] = (int(fields.get("run_time_ns", 0)), int(fields.get("run_cnt", 0)))
    return out


@contextlib.contextmanager
def server(kind: str, tmp: Path):
    """(server, the URL wrk loads) for the HTTPS servers measured alone."""
    if kind == "node-https":
        with servers.node_server(tmp, tls=True) as srv:
            yield srv, f"https://127.0.0.1:{srv.port}/"
    else:
        with servers.go_server(tmp, servers.build_go_server(tmp)) as srv:
            yield srv, f"https://127.0.0.1:{srv.port}/"


def measure(proto: str, fds: dict[int, str], cmd: list[str], done: str) -> float:
    """Runs one load; prints each program's cost; returns the program time per request (ns)."""
    before = program_stats(fds)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = program_stats(fds)
    requests = int(re.search(done, out).group(1))
    total = 0.0
    for name, (ns, runs) in sorted(after.items()):
        d_ns, d_runs = ns - before[name][0], runs - before[name][1]
        if d_runs:
            total += d_ns / requests
            print(
                f"{proto:8s} {name:40s} runs/request {d_runs / requests:5.2f}  ns/run {d_ns / d_runs:7.1f}  "
                f"ns/request {d_ns / requests:7.1f}"
            )
    print(f"{proto}: {requests} requests; program time per request {total:.0f} ns")
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument(
        "--streams", type=int, default=10, help="h2load -m: concurrent streams per connection"
    )
    parser.add_argument(
        "--bpf-source",
        type=Path,
        default=None,
        help="a variant of bpf/red.c to measure instead (experiments)",
    )
    parser.add_argument("--server", choices=("nginx", "node-https", "go-https"), default="nginx")
    parser.add_argument(
        "-D",
        dest="defines",
        action="append",
        default=[],
        metavar="NAME",
        help="compile the probe with this macro defined (a part switched off: RED_EMPTY, "
        "RED_LOCATE_ONLY, RED_H2_NO_BLOCKS; see bpf/red.c)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("red_prog_cost: needs root (eBPF and kernel.bpf_stats_enabled)")
    was = STATS.read_text().strip()
    STATS.write_text("1")
    bpf_source = args.bpf_source
    try:
        with tempfile.TemporaryDirectory() as variant_dir:
            if args.defines:
                original = bpf_source or BPF_SOURCE
                bpf_source = Path(variant_dir) / original.name
                head = "".join(f"#define {name} 1\n" for name in args.defines)
                bpf_source.write_text(head + original.read_text())
            return run(args, bpf_source)
    finally:
        STATS.write_text(was)


def run(args: argparse.Namespace, bpf_source: Path | None) -> int:
    source = RedSource(bpf_source=bpf_source) if bpf_source else RedSource()
    try:
        if args.server != "nginx":
            with tempfile.TemporaryDirectory() as tmp, server(args.server, Path(tmp)) as (srv, url):
                cap = source.available()  # after the server listens: its TLS code is found at load
                if not cap.ok:
                    sys.exit(f"red_prog_cost: probe unavailable: {cap.reason}")
                fds = {info.fd: name.decode() for name, info in source._bpf.funcs.items()}
                wrk = ["wrk", "-t1", "-c32", f"-d{args.duration:g}s", url]
                measure(args.server, fds, wrk, r"(\d+) requests in")
            return 0
        cap = source.available()
        if not cap.ok:
            sys.exit(f"red_prog_cost: probe unavailable: {cap.reason}")
        fds = {info.fd: name.decode() for name, info in source._bpf.funcs.items()}
        totals = {}
        with tempfile.TemporaryDirectory() as tmp, servers.nginx(Path(tmp), http2=True) as srv:
            loads = {
                "HTTP/1.1": (
                    ["wrk", "-t1", "-c32", f"-d{args.duration:g}s", f"http://127.0.0.1:{srv.port}/"],
                    r"(\d+) requests in",
                ),
                "HTTP/2": (
                    ["h2load", "-t1", "-c32", f"-m{args.streams}", f"-D{args.duration:g}"]
                    + [f"http://127.0.0.1:{srv.h2c_port}/"],
                    r"(\d+) succeeded",
                ),
            }
            for proto, (cmd, done) in loads.items():
                totals[proto] = measure(proto, fds, cmd, done)
        print(" | ".join(f"{proto} {ns:.0f} ns/request" for proto, ns in totals.items()))
        return 0
    finally:
        source.close()


if __name__ == "__main__":
    sys.exit(main())
