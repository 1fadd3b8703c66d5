"""HTTP/2 and gRPC under real traffic: exact counts per method at h2load's rate, and the
user-space CPU per request of the thread that drains and decodes the probe's HTTP/2 events.

    sudo .venv/bin/python bench/h2_rate.py [--requests 20000] [--clients 4] [--streams 32]
        [--under-load] [--profile]

The real RED probe (sources/red.py) is loaded; then, one after the other in the same run:

- grpc: the grpcio server (tests/servers/grpc_server.py) and h2load sending gRPC calls (POST,
  content-type application/grpc, te trailers, one framed protobuf message) round-robin over
  /test.Echo/Unary (answered OK), /test.Echo/Stream (one message, then NOT_FOUND in its
  trailers) and /test.Echo/Missing (no such method: UNIMPLEMENTED, trailers-only);
- h2c: nginx over HTTP/2 in the clear (h2load -c -m), round-robin over / (200), /missing
  (404) and /fail (500);
- http1: the same nginx over HTTP/1.1 (h2load --h1), the baseline: its requests are
  aggregated in kernel, so its drain thread only wakes to find nothing.

Each run checks obs-tui's counts per method/route, per status and per grpc-status against
what h2load reports (requests done) and what the server reports (grpc_server.py's own count
per method and status code; nginx's status per path is fixed), and gives the rate h2load
reached. Reported per request, the runs side by side: the CPU time of the drain thread
(`red-h2`: the ring buffer read, the events' unpacking and HPACK decoding, the streams'
counters), split into the ring read (sources/ringbuf.py: its positions read and written
back), the decoding (H2Streams.feed_batch: the records' headers walked in place, the events
decoded) and the rest (the thread's waits and wakeups,
H2_DRAIN_S apart; of it, the collector's passes run on that thread); and the sampling
thread's CPU (sample() once a second, as the console does). Beside them, what may make live
cost more than a replay: the drain thread's batches and context switches (forced ones: the
servers preempting it), and the host's CPU stolen by the hypervisor. The bench's own work on
the drain thread, four clock reads per drain and a copy of the events (for the replays), made
after the drain's decoding, is left out of every figure.

Then, below, the server's events replayed (each figure the least of REPLAYS runs): H2Streams
alone (the live decode's own cost, without the ring and the host's other work, back to back:
warm caches); H2Streams fed the live batches H2_DRAIN_S apart (each batch meets the caches
the host's other work left); with --under-load, grpc and h2c are run twice and the first
run's events are replayed that way during the second (the same load as live); its floor
(each event's fields unpacked, nothing else), H2Streams with every block decoded by the
`hpack` library (remember=False: nothing remembered, a churning table's worst case), and the
`hpack` decoder alone over every header block of every connection in order (a pure-Python
HPACK's own cost per block: what a block met for the first time costs).
The probe decodes every HTTP/2 connection on the host: other HTTP/2 traffic during a run (the
other servers' events per request say how much came) is in the live figures too, while the
replays take the measured server's events only. A loaded host inflates every figure; the
counts must be exact on any host.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hpack import Decoder

from obs_tui.analysis.red import red_section
from obs_tui.sources import h2_streams
from obs_tui.sources.h2_streams import EVENT, EVENT_SIZE, H2Streams
from obs_tui.sources.red import H2_DRAIN_S, RedSource
from obs_tui.sources.ringbuf import record, records
from tests import servers

GRPC_METHODS = {"/test.Echo/Unary": "0", "/test.Echo/Stream": "5", "/test.Echo/Missing": "12"}
GRPC_CODES = {"OK": "0", "NOT_FOUND": "5", "UNIMPLEMENTED": "12"}
NGINX_PATHS = {"/": 200, "/missing": 404, "/fail": 500}
# one gRPC message (uncompressed, 15 bytes): Stream answers one message, then NOT_FOUND
GRPC_BODY = b"\x00\x00\x00\x00\x0f\x01fail:NOT_FOUND"
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


Chunk = tuple[bytes, memoryview]  # a drain's records, as the ring held them, and as words


def chunk_of(data: bytes) -> Chunk:
    return data, memoryview(data).cast("I")


def offsets_of(chunk: Chunk) -> list[int]:
    """Where a chunk's events are."""
    return records(chunk[1], 0, len(chunk[0]))[0]


def feed(streams: H2Streams, chunk: Chunk) -> None:
    streams.feed_batch(chunk[0], chunk[1], 0, len(chunk[0]))


@dataclass
class Run:
    name: str
    requests: int  # done, by h2load
    rate: float  # h2load's req/s
    exact: bool
    why: str
    drain_us: float  # the red-h2 thread's CPU per request
    ring_us: float
    decode_us: float
    sample_us: float
    gc_us: float  # of drain_us: the collector's passes run on the drain thread
    gc_passes: str  # those passes per generation
    batches: int  # drains that found events
    switches: tuple[int, int]  # the drain thread's context switches: (voluntary, forced)
    steal: float  # the host's CPU time stolen by the hypervisor, share of all
    loaded_us: float  # us per event of the replay made during this run (Replay), 0 if none
    chunks: list[Chunk]  # every event drained during the run
    pid: int  # the server's: its events alone are replayed


class Stages:
    """CPU of the drain thread's two stages, and a copy of the events it drained (for the
    floors, made outside both stages' times); the collector's passes on the drain thread.

    The bench's own work on the drain thread is four clock reads per drain, and the copy,
    made after the drain's decoding and taken out of its figures."""

    def __init__(self, red: RedSource) -> None:
        self.ring_s = self.decode_s = self.copy_s = 0.0  # copy_s: the bench's own, not obs-tui's
        self.gc_s = 0.0
        self.gc_passes = [0, 0, 0]
        self.batches = 0
        self.chunks: list[Chunk] = []
        self._gc_start = 0.0
        assert red._h2_thread is not None
        drain_thread = red._h2_thread.ident

        def collected(phase: str, info: dict) -> None:
            if threading.get_ident() != drain_thread:
                return
            if phase == "start":
                self._gc_start = time.thread_time()
            else:
                self.gc_s += time.thread_time() - self._gc_start
                self.gc_passes[info["generation"]] += 1

        gc.callbacks.append(collected)
        self._inside = 0.0  # of the current drain, the time spent in feed_batch and copying
        ring, h2 = red._h2_ring, red.h2
        assert ring is not None
        drain, feed = ring.drain, h2.feed_batch

        def timed_drain(consume):
            self._inside = 0.0
            t = time.thread_time()
            n = drain(consume)
            self.ring_s += time.thread_time() - t - self._inside
            return n

        def timed_feed(buffer, words, start, stop):
            t = time.thread_time()
            end = feed(buffer, words, start, stop)
            fed = time.thread_time()
            self.batches += 1
            self.decode_s += fed - t
            self.chunks.append(chunk_of(bytes(buffer[start:end])))
            self._inside += time.thread_time() - t
            self.copy_s += time.thread_time() - fed
            return end

        ring.drain = timed_drain  # type: ignore[method-assign]
        h2.feed_batch = timed_feed  # type: ignore[method-assign]


def thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def h2load(args: list[str]) -> tuple[int, float, str]:
    out = subprocess.run(["h2load", *args], capture_output=True, text=True, timeout=600).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done", out)
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    if not done or not rate:
        raise SystemExit(f"h2_rate: h2load did not finish: {out[-400:]}")
    return int(done.group(1)), float(rate.group(1)), out


def switches(thread: threading.Thread) -> tuple[int, int]:
    """A thread's context switches so far: (voluntary, forced by the scheduler)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    counts = dict(re.findall(r"^(\w+_ctxt_switches):\s+(\d+)", status, re.M))
    return int(counts["voluntary_ctxt_switches"]), int(counts["nonvoluntary_ctxt_switches"])


def cpu_ticks() -> tuple[int, int]:
    """The host's (all CPU ticks, stolen ones) so far (/proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks), ticks[7]


class Replay:
    """Events of an earlier run fed to an H2Streams of its own, a batch every H2_DRAIN_S as
    the drain thread feeds them, on the calling thread: during a run, under the same load
    as the drain thread (the CPU of the feeds only)."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = [c for c in chunks if c[0]]
        self.streams = H2Streams()
        self.cpu_s = 0.0
        self.events = 0

    def paced(self, seconds: float, runner: threading.Thread) -> None:
        end = time.monotonic() + seconds
        while self.chunks and runner.is_alive() and time.monotonic() < end:
            time.sleep(H2_DRAIN_S)
            chunk = self.chunks.pop(0)
            t = time.thread_time()
            feed(self.streams, chunk)
            self.cpu_s += time.thread_time() - t
            self.events += len(offsets_of(chunk))
        if not self.chunks or not runner.is_alive():
            runner.join(max(end - time.monotonic(), 0))


def measure(
    red: RedSource,
    stages: Stages,
    pid: int,
    name: str,
    load: list[str],
    expect,
    replay: list[Chunk] | None = None,
) -> Run:
    """One h2load run against one server; expect(routes, done) says whether the counts are
    exact. replay: an earlier run's events, replayed meanwhile (Replay)."""
    assert red._h2_thread is not None
    time.sleep(0.5)  # the previous run's events drained
    prev = red.sample(time.time())
    t0 = time.time()
    drain0, ring0, decode0, copy0 = thread_cpu(red._h2_thread), stages.ring_s, stages.decode_s, stages.copy_s
    gc0, passes0, batches0 = stages.gc_s, list(stages.gc_passes), stages.batches
    switches0, ticks0 = switches(red._h2_thread), cpu_ticks()
    stages.chunks = []
    sample_s = 0.0
    result: dict[str, tuple[int, float, str]] = {}
    runner = threading.Thread(target=lambda: result.setdefault("out", h2load(load)))
    runner.start()
    loaded = Replay(replay or [])
    while runner.is_alive():  # the console's tick
        if replay is None:
            runner.join(1.0)
        else:
            loaded.paced(1.0, runner)
        t = time.thread_time()
        red.sample(time.time())
        sample_s += time.thread_time() - t
    if "out" not in result:
        raise SystemExit("h2_rate: h2load failed")
    done, rate, _ = result["out"]
    deadline = time.time() + 10
    while True:  # the last responses are counted at the exit of the server's write
        time.sleep(0.3)
        section = red_section(prev, red.sample(time.time()), time.time() - t0)
        svc = next((s for s in section.services if s.pid == pid), None)
        got = svc.requests + svc.aborted if svc is not None else 0
        if got >= done or time.time() > deadline:
            break
    time.sleep(0.3)
    section = red_section(prev, red.sample(time.time()), time.time() - t0)
    drain_s = thread_cpu(red._h2_thread) - drain0 - (stages.copy_s - copy0)  # (the bench's copy left out)
    switched, ticks = switches(red._h2_thread), cpu_ticks()
    svc = next((s for s in section.services if s.pid == pid), None)
    why = "no service seen" if svc is None else expect(svc, done)
    if section.lost_events:
        why += f"; lost events: {section.lost_reasons}"
    n = max(done, 1)
    return Run(
        name,
        done,
        rate,
        not why,
        why,
        drain_s / n * 1e6,
        (stages.ring_s - ring0) / n * 1e6,
        (stages.decode_s - decode0) / n * 1e6,
        sample_s / n * 1e6,
        (stages.gc_s - gc0) / n * 1e6,
        "/".join(str(b - a) for a, b in zip(passes0, stages.gc_passes, strict=True)),
        stages.batches - batches0,
        (switched[0] - switches0[0], switched[1] - switches0[1]),
        (ticks[1] - ticks0[1]) / max(ticks[0] - ticks0[0], 1),
        loaded.cpu_s / max(loaded.events, 1) * 1e6,
        stages.chunks,
        pid,
    )


def grpc_truth(server: servers.Server, counts_file: Path) -> dict[str, dict[str, int]]:
    counts_file.unlink(missing_ok=True)
    os.kill(server.pid, signal.SIGUSR1)
    for _ in range(50):
        if counts_file.exists():
            return json.loads(counts_file.read_text())
        time.sleep(0.1)
    raise SystemExit("h2_rate: the gRPC server did not report its counts")


def routes_of(svc) -> dict[str, tuple[int, int, dict[str, int], dict[str, int]]]:
    return {r.route: (r.requests, r.errors, dict(r.grpc_status), dict(r.status_classes)) for r in svc.routes}


REPLAYS = 3  # each floor is the least of this many replays: the host's noise is all upward


def best(replay) -> float:
    """The least thread CPU of a few runs of replay()."""
    times = []
    for _ in range(REPLAYS):
        t = time.thread_time()
        replay()
        times.append(time.thread_time() - t)
    return min(times)


@dataclass
class Floors:
    others: float  # events of other servers on the host drained during the run, per request
    events: float  # per request
    kinds: str  # events per request by frame type
    unpack_us: float
    ours_us: float
    paced_us: float  # H2Streams, the live run's batches H2_DRAIN_S apart, as the drain thread feeds them
    library_us: float  # H2Streams(remember=False): every block decoded by hpack
    hpack_us: float
    hpack_block_us: float
    blocks: float  # per request
    failed: int


def of_server(run: Run) -> list[Chunk]:
    """The run's events of its server (the probe sees the host's every HTTP/2 connection)."""
    unpack = EVENT.unpack_from
    out = []
    for chunk in run.chunks:
        data = chunk[0]
        events = [data[at : at + EVENT_SIZE + unpack(data, at)[8]] for at in offsets_of(chunk)]
        out.append(chunk_of(b"".join(record(e) for e in events if unpack(e)[2] == run.pid)))
    return out


def floors(run: Run, profile: bool) -> Floors:
    """The run's server's events replayed: least per-event work, H2Streams alone, H2Streams
    with every block decoded by the library, hpack alone."""
    n = max(run.requests, 1)
    unpack = EVENT.unpack_from
    chunks = of_server(run)
    located = [(chunk[0], offsets_of(chunk)) for chunk in chunks]
    events = sum(len(offsets) for _, offsets in located)
    others = sum(len(offsets_of(chunk)) for chunk in run.chunks) - events

    def unpack_all():
        for data, offsets in located:
            for at in offsets:
                unpack(data, at)

    least = best(unpack_all)
    kinds: dict[str, int] = {}  # events by frame type (a frame split over calls: "+cont")
    names = {1: "HEADERS", 3: "RST_STREAM", 9: "CONTINUATION", 0xF0: "open", 0xF1: "close", 0xF3: "upgrade"}
    for data, offsets in located:
        for at in offsets:
            f = unpack(data, at)
            name = names.get(f[9], str(f[9])) + ("+cont" if f[13] else "")
            kinds[name] = kinds.get(name, 0) + 1

    def replay(remember: bool):
        def run():
            streams = H2Streams(remember)
            for chunk in chunks:
                feed(streams, chunk)

        return run

    ours = best(replay(True))

    def paced() -> float:
        """The batches as the drain thread had them, as far apart: between two, the host's
        other work takes the CPU's caches as it does live (the CPU of the feeds only)."""
        streams, cpu = H2Streams(), 0.0
        for chunk in chunks:
            if chunk[0]:
                time.sleep(H2_DRAIN_S)
                t = time.thread_time()
                feed(streams, chunk)
                cpu += time.thread_time() - t
        return cpu

    paced_s = paced()
    library = best(replay(False))
    if profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            replay(True)()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    # every block, in order, per connection side: one more replay, every block decoded by the
    # library (remember=False), recorded
    blocks: list[tuple[object, bytes]] = []  # (the side itself: an id could be reused)
    decode = h2_streams._Side._decode

    def recorded(side, block):
        blocks.append((side, block))
        return decode(side, block)

    h2_streams._Side._decode = recorded  # type: ignore[method-assign]
    try:
        streams = H2Streams(remember=False)
        for chunk in chunks:
            feed(streams, chunk)
    finally:
        h2_streams._Side._decode = decode  # type: ignore[method-assign]
    decoders: dict[object, Decoder] = {}
    failed = 0
    t = time.thread_time()
    for side, block in blocks:
        decoder = decoders.get(side)
        if decoder is None:
            decoder = decoders[side] = Decoder()
            decoder.max_allowed_table_size = 1 << 20
        try:
            decoder.decode(block, raw=True)
        except Exception:
            failed += 1  # an adopted connection: its table began before the probe looked
    hpack_s = time.thread_time() - t
    return Floors(
        others / n,
        events / n,
        ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])),
        least / n * 1e6,
        ours / n * 1e6,
        paced_s / n * 1e6,
        library / n * 1e6,
        hpack_s / n * 1e6,
        hpack_s / max(len(blocks), 1) * 1e6,
        len(blocks) / n,
        failed,
    )


def report(runs: list[Run], profile: bool) -> None:
    """The runs side by side: what the drain thread spent live, then the same events replayed."""
    decoded = [r for r in runs if r.name != "http1"]
    fl = {r.name: floors(r, profile) for r in decoded}

    def row(label: str, cells: list[str], note: str = "") -> None:
        print(f"{label:34}" + "".join(f"{c:>16}" for c in cells) + (f"   {note}" if note else ""))

    row("", [r.name for r in runs])
    row("requests (h2load, done)", [str(r.requests) for r in runs])
    row("rate, req/s", [f"{r.rate:.0f}" for r in runs], "(h2load's highest, this host)")
    row("counts per method and status", ["exact" if r.exact else "WRONG" for r in runs])
    print("live, us per request (CPU):")
    row("  red-h2 thread", [f"{r.drain_us:.2f}" for r in runs], "target < 5")
    row("    ring read", [f"{r.ring_us:.2f}" for r in runs])
    row("    decode (H2Streams)", [f"{r.decode_us:.2f}" for r in runs])
    row("    the rest (waits, wakeups)", [f"{r.drain_us - r.ring_us - r.decode_us:.2f}" for r in runs])
    row("    of which collector passes", [f"{r.gc_us:.2f}" for r in runs], "(gc, on the drain thread)")
    row("  sampling thread", [f"{r.sample_us:.2f}" for r in runs], "sample() once a second")
    row("  collector passes, gen 0/1/2", [r.gc_passes for r in runs], "(on the drain thread)")
    row("  drains with events", [str(r.batches) for r in runs])
    row(
        "  events per drain",
        [f"{len(r.chunks) and sum(len(offsets_of(c)) for c in r.chunks) / len(r.chunks):.0f}" for r in runs],
    )
    row(
        "  context switches per drain",
        [f"{r.switches[0] / max(r.batches, 1):.1f}/{r.switches[1] / max(r.batches, 1):.1f}" for r in runs],
        "(voluntary/forced)",
    )
    row("  host CPU stolen (hypervisor)", [f"{100 * r.steal:.1f}%" for r in runs])
    row(
        "  other servers' events per request",
        [f"{fl[r.name].others:.2f}" for r in decoded],
        "(in the live figures)",
    )
    print(f"the server's events replayed, us per request (CPU, least of {REPLAYS}):")
    row("  events per request", [f"{fl[r.name].events:.2f}" for r in decoded])
    row("  header blocks per request", [f"{fl[r.name].blocks:.2f}" for r in decoded])
    row("  H2Streams", [f"{fl[r.name].ours_us:.2f}" for r in decoded], "(decode, live above)")
    row(
        "  H2Streams, live's batches and pauses",
        [f"{fl[r.name].paced_us:.2f}" for r in decoded],
        f"(one run, {H2_DRAIN_S} s apart)",
    )
    row(
        "  H2Streams, the same under load",
        [f"{r.loaded_us * fl[r.name].events:.2f}" if r.loaded_us else "" for r in decoded],
        "(--under-load: the first run's events, replayed during this one)",
    )
    row("  floor: each event unpacked only", [f"{fl[r.name].unpack_us:.2f}" for r in decoded])
    row(
        "  H2Streams, hpack every block",
        [f"{fl[r.name].library_us:.2f}" for r in decoded],
        "(remember=False)",
    )
    row("  hpack alone, every block", [f"{fl[r.name].hpack_us:.2f}" for r in decoded])
    row("  hpack alone, us per block", [f"{fl[r.name].hpack_block_us:.2f}" for r in decoded])
    for r in runs:
        if not r.exact:
            print(f"{r.name}: counts WRONG: {r.why}")
    for r in decoded:
        print(f"{r.name} events per request: {fl[r.name].kinds}; hpack failed on {fl[r.name].failed} blocks")


@contextlib.contextmanager
def red_probe(bench: str) -> Iterator[RedSource]:
    """The real RED probe, loaded, and closed after; a one-line reason and exit 1 when it
    cannot load."""
    red = RedSource()
    cap = red.available()
    if not cap.ok:
        raise SystemExit(f"{bench}: RED probe unavailable: {cap.reason}")
    try:
        yield red
    finally:
        red.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000, help="per run (gRPC: a third of it)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--streams", type=int, default=32, help="h2load -m")
    parser.add_argument("--profile", action="store_true", help="cProfile the replayed decoding")
    parser.add_argument(
        "--under-load",
        action="store_true",
        help="run grpc and h2c twice; during the second, the first's events replayed as the drain thread feeds them",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("h2_rate: needs root (the eBPF probe)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "g").mkdir()
        (tmp / "n").mkdir()
        body = tmp / "body.bin"
        body.write_bytes(GRPC_BODY)
        with servers.grpc_server(tmp / "g") as g, servers.nginx(tmp / "n", http2=True) as web:
            with red_probe("h2_rate") as red:
                return bench(red, args, g, web, tmp, body)


def bench(red: RedSource, args, g: servers.Server, web: servers.Server, tmp: Path, body: Path) -> int:
    stages = Stages(red)
    load = ["-c", str(args.clients), "-m", str(args.streams)]
    runs = []

    before = grpc_truth(g, tmp / "g" / "grpc_counts.json")

    def grpc_expect(svc, done: int) -> str:
        nonlocal before
        truth = grpc_truth(g, tmp / "g" / "grpc_counts.json")
        served = {
            method: {GRPC_CODES[c]: n - before.get(method, {}).get(c, 0) for c, n in codes.items()}
            for method, codes in truth.items()
        }
        served = {m: {c: n for c, n in codes.items() if n} for m, codes in served.items()}
        served = {m: codes for m, codes in served.items() if codes}
        got = routes_of(svc)
        want = {
            m: (
                sum(codes.values()),
                sum(n for c, n in codes.items() if c != "0"),
                codes,
                {"2xx": sum(codes.values())},
            )
            for m, codes in served.items()
        }
        before = truth  # (the next run counts from here)
        if sum(sum(c.values()) for c in served.values()) != done:
            return f"the server answered {served}, h2load counted {done}"
        return "" if got == want else f"obs-tui {got} != server {want}"

    grpc_n = args.requests // 3
    uris = [f"http://127.0.0.1:{g.port}{m}" for m in GRPC_METHODS]
    grpc_load = ["-n", str(grpc_n), *load, "-d", str(body)]
    for header in GRPC_HEADERS:
        grpc_load += ["-H", header]
    runs.append(measure(red, stages, g.pid, "grpc", [*grpc_load, *uris], grpc_expect))
    if args.under_load:
        runs.append(
            measure(red, stages, g.pid, "grpc+replay", [*grpc_load, *uris], grpc_expect, of_server(runs[0]))
        )

    def nginx_expect(svc, done: int) -> str:
        got = routes_of(svc)
        per = done // len(NGINX_PATHS)
        want = {p: (per, per if s >= 500 else 0, {}, {f"{s // 100}xx": per}) for p, s in NGINX_PATHS.items()}
        if done % len(NGINX_PATHS):
            return f"{done} requests do not split evenly over {len(NGINX_PATHS)} paths"
        got = {p: v for p, v in got.items() if p in want or v[0]}
        return "" if got == want else f"obs-tui {got} != nginx {want}"

    # h2load splits -n over its clients and each client goes round the URIs from the first:
    # the split is even over the paths only when every client gets a multiple of them
    split = len(NGINX_PATHS) * args.clients
    nginx_n = max(split, args.requests // split * split)
    paths = [f"http://127.0.0.1:{web.h2c_port}{p}" for p in NGINX_PATHS]
    runs.append(measure(red, stages, web.pid, "h2c", ["-n", str(nginx_n), *load, *paths], nginx_expect))
    if args.under_load:
        h2c = runs[-1]
        runs.append(
            measure(
                red,
                stages,
                web.pid,
                "h2c+replay",
                ["-n", str(nginx_n), *load, *paths],
                nginx_expect,
                of_server(h2c),
            )
        )
    paths1 = [f"http://127.0.0.1:{web.port}{p}" for p in NGINX_PATHS]
    # -m 1: h2load's -m over HTTP/1.1 pipelines requests, which the probe counts as not parsed
    load1 = ["--h1", "-n", str(nginx_n), "-c", str(args.clients), "-m", "1", *paths1]
    runs.append(measure(red, stages, web.pid, "http1", load1, nginx_expect))
    report(runs, args.profile)
    return 0 if all(r.exact for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
