"""The HTTP/2 stream decoder (sources/h2_streams.py) fed with the probe's event layout and real
HPACK blocks from the `hpack` encoder: streams, gRPC statuses, resets, and connections whose
table began before obs-tui looked (never decoded with a wrong table)."""

from __future__ import annotations

from pathlib import Path

import pytest
import zstandard
from hpack import Encoder
from hpack.struct import NeverIndexedHeaderTuple
from hypothesis import given, settings
from hypothesis import strategies as st

from obs_tui.probe_constants import H2_EV_CLOSE, H2_EV_OPEN
from obs_tui.raw import UNPARSED_METHOD
from obs_tui.sources.h2_streams import EVENT, UNKNOWN_ROUTE, UNKNOWN_STATUS, H2Streams
from obs_tui.sources.ringbuf import BUSY, DISCARD, record

HEADERS, RST = 1, 3
END_STREAM, END_HEADERS = 1, 4
PID = 4242
DATA = Path(__file__).parent / "data"


class Conn:
    def __init__(self, streams: H2Streams, adopted: bool = False, conn: int = 1) -> None:
        self.streams, self.conn = streams, conn
        self.seq = [0, 0]
        self.enc = [Encoder(), Encoder()]
        self.event(H2_EV_OPEN, 0, 0, int(adopted), 0, b"")

    def event(self, kind, direction, stream, flags, ts, data, seq=0):
        head = EVENT.pack(
            self.conn, ts, PID, 0, stream, len(data), seq, 0, len(data), kind, flags, direction, 0, 0, 0, 1
        )
        self.streams.feed(head + data)

    def frame(self, kind, direction, stream, flags, ts, data):
        self.seq[direction] += 1
        self.event(kind, direction, stream, flags, ts, data, self.seq[direction])

    def headers(self, direction, stream, headers, ts, end=False):
        block = self.enc[direction].encode(headers)
        self.frame(HEADERS, direction, stream, END_HEADERS | (END_STREAM if end else 0), ts, block)

    def close(self, ts):
        self.event(H2_EV_CLOSE, 0, 0, 0, ts, b"")


class Recorder:
    """Takes a Conn's events in place of H2Streams."""

    def __init__(self, events: list[bytes]) -> None:
        self.feed = events.append


def grpc_call(c: Conn, stream: int, method: str, status: int, t0: int) -> None:
    c.headers(
        0,
        stream,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method),
            ("content-type", "application/grpc"),
            ("authorization", "Bearer s3cret"),
        ],
        t0,
    )
    c.headers(1, stream, [(":status", "200"), ("content-type", "application/grpc")], t0 + 1_000_000)
    c.headers(1, stream, [("grpc-status", str(status)), ("grpc-message", "x")], t0 + 2_000_000, end=True)


def counts(streams: H2Streams) -> dict:
    return {
        (k.method, k.path, k.status, k.proto, k.grpc_status): e.count for k, e in streams.entries().items()
    }


def test_grpc_calls_per_method_with_status_and_latency():
    s = H2Streams()
    c = Conn(s)
    for i in range(6):
        grpc_call(c, 1 + 2 * i, "/test.Echo/Unary", 0 if i < 4 else 5, i * 10_000_000)
    # trailers-only: the status in the response's only HEADERS
    c.headers(
        0, 99, [(":method", "POST"), (":path", "/test.Echo/Stream"), ("content-type", "application/grpc")], 0
    )
    c.headers(1, 99, [(":status", "200"), ("grpc-status", "13")], 3_000_000, end=True)
    assert counts(s) == {
        ("POST", "/test.Echo/Unary", 200, "grpc", 0): 4,
        ("POST", "/test.Echo/Unary", 200, "grpc", 5): 2,
        ("POST", "/test.Echo/Stream", 200, "grpc", 13): 1,
    }
    unary = next(e for k, e in s.entries().items() if k.grpc_status == 0)
    assert unary.sum_ns == 4 * 1_000_000  # first request HEADERS to first response HEADERS
    assert "s3cret" not in repr(s.entries())


def test_plain_h2_request_cut_query_and_reset_before_response():
    s = H2Streams()
    c = Conn(s)
    c.headers(0, 1, [(":method", "GET"), (":path", "/users/7?token=hunter2")], 0, end=True)
    c.headers(1, 1, [(":status", "503")], 500)
    c.headers(0, 3, [(":method", "GET"), (":path", "/slow")], 0, end=True)
    c.frame(RST, 0, 3, 0, 900, (8).to_bytes(4, "big"))
    assert counts(s) == {("GET", "/users/7", 503, "h2", -1): 1, ("GET", "/slow", 0, "h2", -1): 1}
    assert "hunter2" not in repr(s.entries())


def test_adopted_connection_never_guesses_names_from_an_unknown_table():
    """The client's encoder indexed the path before obs-tui looked: the adopted decoder sees a
    reference to an entry it never saw, and counts the stream under method unknown; a path
    sent after, as a new literal, is decoded."""
    s = H2Streams()
    before = Encoder()
    before.encode([(":method", "POST"), (":path", "/test.Echo/Unary"), ("content-type", "application/grpc")])
    c = Conn(s, adopted=True, conn=2)
    c.enc[0] = before  # the same client encoder, its table already holding those entries
    grpc_call(c, 101, "/test.Echo/Unary", 0, 0)
    grpc_call(c, 103, "/test.Echo/Other", 0, 0)
    got = counts(s)
    # its content-type was indexed before too: not even gRPC can be told, only that it was a
    # request answered with 200
    assert got[(UNPARSED_METHOD, UNKNOWN_ROUTE, 200, "h2", -1)] == 1
    assert got[("POST", "/test.Echo/Other", 200, "h2", -1)] == 1
    assert not [k for k in got if k[1] == "/test.Echo/Unary"]


def test_close_counts_unanswered_streams_as_aborted():
    s = H2Streams()
    c = Conn(s)
    c.headers(0, 1, [(":method", "GET"), (":path", "/a")], 0, end=True)
    c.close(10)
    assert counts(s) == {("GET", "/a", 0, "h2", -1): 1}


def test_a_drain_walks_the_rings_records_to_one_still_being_written():
    """feed_batch reads each record's header in the ring's layout (sources/ringbuf.py): a
    discarded record is skipped, a record still being written ends the walk (where it
    stopped is returned, for the next drain to begin at), and the records after it are left
    for that drain."""
    events: list[bytes] = []
    c = Conn(Recorder(events))  # type: ignore[arg-type]
    grpc_call(c, 1, "/test.Echo/Unary", 0, 0)
    grpc_call(c, 3, "/test.Echo/Unary", 5, 10_000_000)
    records = [record(e) for e in events]  # open, then three header blocks per call
    discarded = bytearray(record(b"\xff" * 60))
    discarded[3] |= DISCARD >> 24
    busy = bytearray(records[5])
    busy[3] |= BUSY >> 24
    ring = b"".join([*records[:2], bytes(discarded), *records[2:5], bytes(busy), records[6]])
    s = H2Streams()
    with memoryview(ring) as view, view.cast("I") as words:
        stopped = s.feed_batch(ring, words, 0, len(ring))
        assert stopped == ring.index(bytes(busy))
        assert counts(s) == {("POST", "/test.Echo/Unary", 200, "grpc", 0): 1}  # the second not yet
    rest = b"".join(records[5:])
    with memoryview(rest) as view, view.cast("I") as words:
        assert s.feed_batch(rest, words, 0, len(rest)) == len(rest)
    assert counts(s) == {
        ("POST", "/test.Echo/Unary", 200, "grpc", 0): 1,
        ("POST", "/test.Echo/Unary", 200, "grpc", 5): 1,
    }


def test_blocks_remembered_per_table_state_decode_as_that_state_says():
    """A peer that indexes a header in every block (nginx's server and date do) brings its
    table back to the same few contents: decoded blocks are remembered per table state. Here
    the client indexes :path /a or /b, alternately, in every other request, so the table
    alternates between two states, whose newest entry is /a or /b; a fully indexed request
    naming the newest entry (index 62) means /a in one state and /b in the other. Remembered
    blocks move between the states without decoding; the block first met after them must be
    decoded against the state they left, never against the decoder's last decoded table."""
    s = H2Streams()
    c = Conn(s)
    get = b"\x82"  # :method GET (static)

    def literal(path: bytes) -> bytes:  # :path (static name 4), value indexed: 0x44
        return get + bytes([0x44, len(path)]) + path

    newest = get + b"\xbe"  # indexed field 62: the dynamic table's newest entry
    sent: dict[str, int] = {}
    stream = 1
    path = ""
    plan = [literal(b"/a"), literal(b"/b")] * 200  # entries of 39 bytes: the table fills at 105
    plan[301:301] = [newest]  # after /a (plan[300]): the first newest, met in state "/a"
    plan[353:353] = [newest]  # after /b
    plan += [newest]  # after /b again: remembered
    for block in plan:
        c.frame(HEADERS, 0, stream, END_HEADERS | END_STREAM, stream, block)
        c.frame(HEADERS, 1, stream, END_HEADERS | END_STREAM, stream + 1, b"\x88")  # :status 200
        if block != newest:
            path = block[3:].decode()  # and the newest entry, which `newest` names
        sent[path] = sent.get(path, 0) + 1
        stream += 2
    assert {k.path: e.count for k, e in s.entries().items()} == sent
    assert sent == {"/a": 201, "/b": 202}
    side = next(iter(s._conns.values())).sides[0]
    assert len(side.snapshots) < 64  # the states came round: remembered, not all decoded


# ---- what is remembered says what the `hpack` library decodes -------------------------------


def _replay(streams: H2Streams, events: list[bytes]) -> tuple[list, list]:
    """Feeds the events one by one. What every header block said, in order, as (connection's
    number, direction, outcome) (a request's route as a tuple of its fields); and the tables
    of both decoders of each connection as it ended, then of those still open (the entries
    queued for them added)."""
    said: list[tuple[int, int, object]] = []
    tables: list[list[tuple[bytes, bytes]]] = []
    end, numbers = streams._end, {}

    def observe(conn, direction, outcome):
        number = numbers.setdefault(id(conn), len(numbers))
        what = (outcome.method, outcome.path, outcome.truncated, outcome.grpc) if not direction else outcome
        said.append((number, direction, what))

    def ended(conn, ts):
        for side in conn.sides:
            side._settle()
            tables.append(list(side.decoder.header_table.dynamic_entries))
        end(conn, ts)

    streams.observe = observe
    streams._end = ended  # type: ignore[method-assign]
    for event in events:
        streams.feed(event)
    for conn in streams._conns.values():
        ended(conn, 0)
    return said, tables


def _same_as_the_library(events: list[bytes]) -> tuple[H2Streams, list]:
    ours, library = H2Streams(), H2Streams(remember=False)
    said, tables = _replay(ours, events)
    assert (said, tables) == _replay(library, events)
    assert ours.entries() == library.entries()
    return ours, said


def _captured(name: str) -> list[bytes]:
    """Events the probe sent for real servers and clients (bench/h2_capture.py), stored in
    the ring buffer's layout (8-byte record headers, records padded to 8 bytes)."""
    data = zstandard.ZstdDecompressor().decompress((DATA / f"h2-events-{name}.zst").read_bytes())
    events, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "little")
        events.append(data[at + 8 : at + 8 + length])
        at += 8 + length + (-length % 8)
    return events


CURL = {"/": 12, "/status/503": 3, "/status/404": 2, **{f"/users/{i}": 1 for i in range(4)}}


@pytest.mark.parametrize(
    ("name", "blocks", "requests"),
    [
        # h2load, 4 connections: three gRPC methods round-robin, the grpcio server's blocks
        # naming its table's entries, a few split over its iovecs (several events each)
        ("grpcio-h2load", 4000, {f"/test.Echo/{m}": 500 for m in ("Unary", "Stream", "Missing")}),
        # nginx indexes server, date, content-type and length in every response: the
        # remembered blocks queue their entries, the table wraps round many times
        ("nginx-h2load", 3000, {"/": 500, "/missing": 500, "/fail": 500}),
        # grpc-core's client encoder (grpc-timeout, user-agent, ...), unary and streaming
        ("grpcio-client", 94, {"/test.Echo/Unary": 28, "/test.Echo/Stream": 6}),
        # curl, 21 requests on one connection, to nginx (TLS through the system libssl), Node's
        # http2 (its own OpenSSL) and Go's net/http (crypto/tls)
        ("nginx-curl", 42, CURL),
        ("node-curl", 42, CURL),
        ("go-curl", 42, CURL),
    ],
)
def test_remembered_blocks_say_what_hpack_decodes_on_captured_traffic(name, blocks, requests):
    """Real servers' and clients' header blocks (the probe's events, stored): every block
    says the same, and each connection's tables end the same, as when the `hpack` library
    decodes every block; every request is counted under its path."""
    ours, said = _same_as_the_library(_captured(name))
    assert len(said) == blocks
    counted: dict[str, int] = {}
    for key, entry in ours.entries().items():
        counted[key.path] = counted.get(key.path, 0) + entry.count
    assert counted == requests


NAMES = [b"server", b"date", b"content-type", b"x-trace", b"grpc-status", b"grpc-message", b"set-cookie"]
VALUES = [b"", b"nginx", b"Sun, 29 Nov 2026 21:00:0", b"application/grpc", b"0", b"x" * 300, b"a" * 4000]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([200, 404, 500]),
            st.lists(
                st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES), st.integers(0, 9), st.booleans()),
                max_size=6,
            ),
            st.sampled_from([None, None, None, None, 0, 256, 4096, 1000]),
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_remembered_blocks_say_what_hpack_decodes_whatever_the_encoder_does(responses):
    """Response blocks from the library's encoder: new values indexed, repeated ones named by
    index, never-indexed fields, values larger than the table, table size updates; and blocks
    as nginx sends them (`fresh`: every field a literal, indexed anew each time, by an encoder
    with an empty table), whose indices the connection's encoder then gets wrong (a peer's
    bad index is decoded as the library decodes it too). Each block says the same, and the
    tables end the same, as when the library decodes every one."""
    events: list[bytes] = []
    c = Conn(Recorder(events))  # type: ignore[arg-type]
    c.headers(0, 1, [(":method", "GET"), (":path", "/")], 0)
    for i, (status, fields, size, fresh) in enumerate(responses):
        if size is not None:
            c.enc[1].header_table_size = size
        headers = [
            (name, value + bytes([48 + variant])) if not never else NeverIndexedHeaderTuple(name, value)
            for name, value, variant, never in fields
        ]
        block = (Encoder() if fresh else c.enc[1]).encode([(":status", str(status)), *headers])
        c.frame(HEADERS, 1, 1, END_HEADERS, i, block)
    _same_as_the_library(events)


def test_a_block_that_sets_the_table_size_acts_on_the_table_each_time():
    """A block that reads no entry but sets the table's size (to 0, emptying it, then back)
    is not remembered as meaning the same whatever the table: met again, it empties the table
    again, and the entry a later block names (index 62) is the library's answer, not the one
    added before it."""
    events: list[bytes] = []
    c = Conn(Recorder(events))  # type: ignore[arg-type]
    resize = b"\x20\x3f\xe1\x1f\x88"  # size 0, size 4096, :status 200
    blocks = [Encoder().encode([(":status", "200"), ("server", "a")]), resize]
    blocks += [Encoder().encode([(":status", "404"), ("server", "b")]), resize, b"\x88\xbe"]
    for i, block in enumerate(blocks):
        stream = 1 + 2 * i
        c.headers(0, stream, [(":method", "GET"), (":path", f"/{i}")], i)
        c.frame(HEADERS, 1, stream, END_HEADERS | END_STREAM, i, block)
    ours, said = _same_as_the_library(events)
    statuses = [what for _, direction, what in said if direction]
    assert statuses == [(200, -1), (200, -1), (404, -1), (200, -1), (UNKNOWN_STATUS, -1)]  # (62: no entry)
