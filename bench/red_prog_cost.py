"""Where the RED probe's time goes: kernel-measured run time of each of its programs per request.

    sudo .venv/bin/python bench/red_prog_cost.py [--duration 4] [--streams 10]
    sudo .venv/bin/python bench/red_prog_cost.py --stages --against main --rounds 2

One nginx on loopback with the probe attached and kernel.bpf_stats_enabled=1 (which adds ~2
clock reads per program run to what it measures; reset on exit), loaded in turn by:
HTTP/1.1, wrk -t1 -c32 (the load of bench/red_overhead.py, whose throughput ratio these numbers
explain); and HTTP/2 in the clear, h2load -t1 -c32 -m STREAMS (concurrent streams per
connection). For every program: runs per request, ns per run and ns per request, from the
run_time_ns/run_cnt the kernel reports in the program fds' fdinfo; then the total per request
of each protocol, side by side. A tail call's program runs inside its caller's run: the HTTP/2
frame walk (h2_walk_tp) is counted in sock_recv_length's and sock_send_length's time.

Variants, each loaded in turn against the same nginx and compared in one table at the end
(rounds alternate them, every other round in reverse order, so a host's load drifting during
the run hits them all alike; the table keeps each variant's least figure, the one least
disturbed by other work):

    --stages        the probe cut at each stage as well (bpf/red.c's switches): RED_EMPTY (the
                    tracepoints' and bpf_stats' own cost), RED_LOCATE_ONLY (stops once the
                    buffer is found), RED_H2_NO_WALK (on_read/on_write, the HTTP/2 frame walk
                    not called), RED_H2_NO_BLOCKS (the walk, sending no header block)
    --against REF   bpf/red.c as of git REF (e.g. main) beside the working tree's (repeatable)
    -D NAME         every variant compiled with NAME defined; -D RED_COUNT adds, per request,
                    the probe's user-memory reads, hash map operations, ring buffer
                    reservations and tail calls (counted by the probe: slower, but exact)

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
STAGES = ("RED_EMPTY", "RED_LOCATE_ONLY", "RED_H2_NO_WALK", "RED_H2_NO_BLOCKS")
# bpf/red.c's red_counts slots under -D RED_COUNT
COUNTS = ("user reads", "hash ops", "ring reserves", "tail calls")


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


def probe_counts(source: RedSource) -> list[int] | None:
    """The probe's own operation counters (-D RED_COUNT), summed over CPUs; None without."""
    try:
        table = source._bpf["red_counts"]
    except KeyError:
        return None
    return [sum(table[table.Key(i)]) for i in range(len(COUNTS))]


@contextlib.contextmanager
def server(kind: str, tmp: Path):
    """(server, the URL wrk loads) for the HTTPS servers measured alone."""
    if kind == "node-https":
        with servers.node_server(tmp, tls=True) as srv:
            yield srv, f"https://127.0.0.1:{srv.port}/"
    else:
        with servers.go_server(tmp, servers.build_go_server(tmp)) as srv:
            yield srv, f"https://127.0.0.1:{srv.port}/"


def measure(label: str, source: RedSource, cmd: list[str], done: str) -> float:
    """Runs one load; prints each program's cost; returns the program time per request (ns)."""
    fds = {info.fd: name.decode() for name, info in source._bpf.funcs.items()}
    before, counts_before = program_stats(fds), probe_counts(source)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after, counts_after = program_stats(fds), probe_counts(source)
    requests = int(re.search(done, out).group(1))
    total = 0.0
    for name, (ns, runs) in sorted(after.items()):
        d_ns, d_runs = ns - before[name][0], runs - before[name][1]
        if d_runs:
            total += d_ns / requests
            print(
                f"{label:24s} {name:40s} runs/request {d_runs / requests:5.2f}  ns/run {d_ns / d_runs:7.1f}  "
                f"ns/request {d_ns / requests:7.1f}"
            )
    if counts_before is not None and counts_after is not None:
        per = ", ".join(
            f"{what} {(b - a) / requests:.2f}"
            for what, a, b in zip(COUNTS, counts_before, counts_after, strict=True)
        )
        print(f"{label}: per request: {per}")
    print(f"{label}: {requests} requests; program time per request {total:.0f} ns")
    return total


def variants(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    """name -> the probe source to load for it (written under work when it differs from the tree's)."""
    base = {"tree": args.bpf_source or BPF_SOURCE}
    for i, ref in enumerate(args.against):
        text = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{ref}:bpf/red.c"], capture_output=True, text=True
        )
        if text.returncode:
            sys.exit(f"red_prog_cost: no bpf/red.c at {ref!r}: {text.stderr.strip()}")
        (work / f"against-{i}.c").write_text(text.stdout)
        base[ref] = work / f"against-{i}.c"
    out = {}
    for name, path in base.items():
        stages = [()] + ([(s,) for s in STAGES] if args.stages and name == "tree" else [])
        for stage in stages:
            defines = [*stage, *args.defines]
            label = "+".join([name, *stage]) if stage else name
            if not defines:
                out[label] = path
                continue
            variant = work / f"{len(out)}-{path.name}"
            variant.write_text("".join(f"#define {d} 1\n" for d in defines) + path.read_text())
            out[label] = variant
    return out


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
        help="a variant of bpf/red.c to measure instead of the working tree's (experiments)",
    )
    parser.add_argument("--server", choices=("nginx", "node-https", "go-https"), default="nginx")
    parser.add_argument(
        "--load",
        default="http1,h2",
        help="which loads, comma-separated: http1 and h2 (nginx), grpc (the grpcio test server)",
    )
    parser.add_argument("--stages", action="store_true", help="also the probe cut at each stage")
    parser.add_argument(
        "--against",
        metavar="REF",
        action="append",
        default=[],
        help="also bpf/red.c as of this git commit (repeatable)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="times each variant is measured")
    parser.add_argument(
        "-D",
        dest="defines",
        action="append",
        default=[],
        metavar="NAME",
        help="compile the probe with this macro defined (a part switched off: RED_EMPTY, "
        "RED_LOCATE_ONLY, RED_H2_NO_WALK, RED_H2_NO_BLOCKS; counters: RED_COUNT; see bpf/red.c)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("red_prog_cost: needs root (eBPF and kernel.bpf_stats_enabled)")
    was = STATS.read_text().strip()
    STATS.write_text("1")
    try:
        with tempfile.TemporaryDirectory() as work:
            found = variants(args, Path(work))
            if args.server != "nginx":
                return run_tls(args, next(iter(found.values())))
            return run_nginx(args, found)
    finally:
        STATS.write_text(was)


def load(path: Path) -> RedSource:
    source = RedSource(bpf_source=path)
    cap = source.available()
    if not cap.ok:
        source.close()
        sys.exit(f"red_prog_cost: probe unavailable: {cap.reason}")
    return source


def run_tls(args: argparse.Namespace, path: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp, server(args.server, Path(tmp)) as (srv, url):
        source = load(path)  # after the server listens: its TLS code is found at load
        try:
            wrk = ["wrk", "-t1", "-c32", f"-d{args.duration:g}s", url]
            measure(args.server, source, wrk, r"(\d+) requests in")
        finally:
            source.close()
    return 0


def run_nginx(args: argparse.Namespace, found: dict[str, Path]) -> int:
    best: dict[str, dict[str, float]] = {}
    wanted = set(args.load.split(","))
    if wanted - {"http1", "h2", "grpc"}:
        sys.exit(f"red_prog_cost: unknown load in {args.load!r} (http1, h2, grpc)")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        srv = stack.enter_context(servers.nginx(tmp, http2=True))
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
        loads = {k: v for k, v in loads.items() if {"HTTP/1.1": "http1", "HTTP/2": "h2"}[k] in wanted}
        if "grpc" in wanted:
            # grpcio (h2c; its header blocks written in pieces over iovecs, sendmsg/recvmsg):
            # unary calls, one message each, h2load -c4 -m8 (grpcio's pace is its own)
            (tmp / "grpc").mkdir()
            g = stack.enter_context(servers.grpc_server(tmp / "grpc"))
            body = tmp / "grpc-body"
            body.write_bytes(b"\x00\x00\x00\x00\x02hi")
            loads["gRPC"] = (
                ["h2load", "-t1", "-c4", "-m8", f"-D{args.duration:g}", "-d", str(body)]
                + ["-H", "content-type: application/grpc", "-H", "te: trailers"]
                + [f"http://127.0.0.1:{g.port}/test.Echo/Unary"],
                r"(\d+) succeeded",
            )
        for round_ in range(args.rounds):
            order = list(found.items())
            for label, path in order[::-1] if round_ % 2 else order:
                source = load(path)
                try:
                    for proto, (cmd, done) in loads.items():
                        ns = measure(f"{label} {proto}", source, cmd, done)
                        mine = best.setdefault(label, {})
                        mine[proto] = min(ns, mine.get(proto, ns))
                finally:
                    source.close()
    width = max(len(label) for label in best)
    for label, totals in best.items():
        print(
            f"{label:{width}s} " + " | ".join(f"{proto} {ns:5.0f} ns/request" for proto, ns in totals.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
