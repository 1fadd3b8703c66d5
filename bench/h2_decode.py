#!/usr/bin/env python3
"""User-space cost of HTTP/2 and gRPC decoding per request (issue 14's target: < 5 us, one core).

    .venv/bin/python bench/h2_decode.py [--calls 20000] [--conns 50] [--methods 20] [--churn]

The probe's events for --calls gRPC calls are built first, in the probe's event layout
(struct h2_event, as tests/test_h2_streams.py builds them), from real HPACK blocks of the
`hpack` encoder: per call a request HEADERS block with grpcio's usual fields (:method, :scheme,
:path, :authority, content-type, te, user-agent, grpc-accept-encoding, grpc-timeout), the
response's HEADERS and its trailers (grpc-status, grpc-message), over --conns connections
opened and closed, round --methods gRPC methods, one call in twenty failing. Then they are
fed, timed, to sources/h2_streams.py's H2Streams as the ring buffer's thread feeds them (laid
out as sources/ringbuf.py's drain hands them over: 8-byte record headers, records padded to 8
bytes, a batch of --batch events per drain; then decoded, streams matched, counters kept), and
read back as counters once per 1,000 calls, as the sampler does.

grpc-timeout is sent as grpc's C core sends it (hpack_encoder.cc, TimeoutCompressorImpl): a
call's timeout (here a 1 s deadline, a few ms already spent) is sent as the index of an earlier
one still in the table when it is shorter by less than 3 %, else as a new indexed literal; so a
connection's request blocks repeat once its methods are in the table. --churn sends a new
grpc-timeout value indexed with every call instead (the session-6 bench): every request block
then changes the table, the stated worst case, where most blocks go through the pure-Python
`hpack` decoder. The ring buffer's own read is not counted here (bench/h2_rate.py counts it).
Reported: us per call (wall and this thread's CPU), and the counters checked against what was
sent. A loaded host inflates the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from obs_tui.sources.h2_streams import H2Streams  # noqa: E402
from obs_tui.sources.ringbuf import record  # noqa: E402
from tests.test_h2_streams import Conn  # noqa: E402


class Recorder:
    """Takes the events Conn writes, in place of H2Streams, to replay them later."""

    def __init__(self) -> None:
        self.events: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.events.append(data)


def grpc_timeout(i: int, previous: list[int], churn: bool) -> str:
    """The grpc-timeout value a grpc C core client sends for call i (previous: the values it
    sent as new literals on this connection, newest last, at most five)."""
    if churn:
        return f"{1000 + i % 7}m"
    timeout = 1000 - (i * 7) % 5  # a 1 s deadline, 0-4 ms of it spent before sending
    for earlier in reversed(previous):
        if 0.97 * earlier < timeout <= earlier:  # within 3 %, shorter: its index is sent
            return f"{earlier}m"
    previous[:] = [*previous[-4:], timeout]
    return f"{timeout}m"


def build(
    calls: int, conns: int, methods: int, churn: bool = False
) -> tuple[list[bytes], dict[tuple[str, int], int]]:
    rec = Recorder()
    previous: list[int] = []
    sent: dict[tuple[str, int], int] = {}
    per_conn = max(1, calls // conns)
    c = None
    for i in range(calls):
        if i % per_conn == 0:
            if c is not None:
                c.close(i * 1000)
            c = Conn(rec, conn=1 + i // per_conn)  # type: ignore[arg-type]
            previous = []
        assert c is not None
        stream = 1 + 2 * (i % per_conn)
        method = f"/bench.Service{i % methods}/Method{i % 3}"
        status = 14 if i % 20 == 19 else 0
        t0 = i * 1000
        c.headers(
            0,
            stream,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", "127.0.0.1:50051"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("user-agent", "grpc-python/1.66.0 grpc-c/43.0.0 (linux; chttp2)"),
                ("grpc-accept-encoding", "identity,deflate,gzip"),
                ("grpc-timeout", grpc_timeout(i, previous, churn)),
            ],
            t0,
        )
        c.headers(1, stream, [(":status", "200"), ("content-type", "application/grpc")], t0 + 300)
        c.headers(
            1,
            stream,
            [("grpc-status", str(status)), ("grpc-message", "" if not status else "x")],
            t0 + 500,
            end=True,
        )
        sent[(method, status)] = sent.get((method, status), 0) + 1
    if c is not None:
        c.close(calls * 1000)
    return rec.events, sent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--methods", type=int, default=20)
    parser.add_argument("--churn", action="store_true", help="a new grpc-timeout indexed every call")
    parser.add_argument("--batch", type=int, default=200, help="events per ring buffer drain")
    args = parser.parse_args()
    events, sent = build(args.calls, args.conns, args.methods, args.churn)
    batches = []  # as the ring holds them: 8-byte header, record, padding to 8 bytes
    for first in range(0, len(events), args.batch):
        chunk = b"".join(record(e) for e in events[first : first + args.batch])
        batches.append((chunk, memoryview(chunk).cast("I")))
    streams = H2Streams()
    read_every = max(1, len(batches) * 1000 // args.calls)
    wall, cpu = time.perf_counter(), time.thread_time()
    for i, (chunk, words) in enumerate(batches):
        streams.feed_batch(chunk, words, 0, len(chunk))
        if i % read_every == 0:
            streams.entries()
    entries = streams.entries()
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    got = {(k.path, k.grpc_status): e.count for k, e in entries.items()}
    if got != sent:
        print(
            f"h2_decode: counters differ from the calls sent: {sorted(set(got.items()) ^ set(sent.items()))[:5]}"
        )
        return 1
    print(
        f"{args.calls} gRPC calls, {args.methods} methods{', churn' if args.churn else ''}, {len(events)} events, "
        f"{args.conns} connections: "
        f"{wall / args.calls * 1e6:.2f} us/call wall, {cpu / args.calls * 1e6:.2f} us/call CPU "
        f"(target < 5 us); counters exact"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
