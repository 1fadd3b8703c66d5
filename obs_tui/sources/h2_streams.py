"""HTTP/2 and gRPC requests from the RED probe's frame events (bpf/red.c, the HTTP/2 section).

The probe walks the frames of every HTTP/2 connection of a server and sends here only the
header blocks (HEADERS and CONTINUATION payloads), RST_STREAM codes, the connection's start
and end, and the HTTP/1.1 request an h2c upgrade turned into stream 1 (method and path as its
HTTP/1 parser read them), each with its stream, direction and time. This module keeps one
HPACK decoder per connection and direction (the `hpack` package), decodes each block in order
(or finds what a block met before said, see _Side), keeps only :method, :path (cut before its
query), :status, grpc-status and content-type, and drops the rest at once. Streams are requests: latency from the request's first HEADERS to the
response's first HEADERS; an error is a 5xx or a grpc-status other than 0 (trailers, or a
trailers-only response). The results are StatKey/StatEntry counters, cumulative like the
probe's own, so the RED analysis sees HTTP/2 requests in the shape of HTTP/1 ones.

A table that cannot be trusted is never guessed from. A connection adopted mid-stream (opened
before the probe attached), or one whose block was lost or cut, gets a decoder whose dynamic
table is full of placeholder entries (empty names): an entry the peer added before we looked
resolves to a placeholder, never to another header, while entries added since are real (new
entries take the lowest indices and evictions take the oldest, so the placeholders age out
exactly as the unknown entries do). A request whose method or path resolves to a placeholder
is counted under method "?" and UNKNOWN_ROUTE.
"""

from __future__ import annotations

import mmap
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from hpack import Decoder
from hpack.exceptions import HPACKError
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple
from hpack.table import HeaderTable

from obs_tui.probe_constants import (
    H2_EV_CLOSE,
    H2_EV_DESYNC,
    H2_EV_OPEN,
    H2_EV_UPGRADE,
    HIST_BUCKETS,
    PATH_LEN,
)
from obs_tui.raw import METHODS, UNPARSED_METHOD, StatEntry, StatKey, bucket_of
from obs_tui.sources.ringbuf import BUSY as RING_BUSY
from obs_tui.sources.ringbuf import DISCARD as RING_DISCARD
from obs_tui.sources.ringbuf import FLAGS as RING_FLAGS
from obs_tui.sources.ringbuf import HEADER as RING_HEADER
from obs_tui.sources.ringbuf import record

# struct h2_event in bpf/red.c, up to its data[]
EVENT = struct.Struct("<QQIIIIIIHBBBBBBB7x")
EVENT_SIZE = EVENT.size
# the fields a frame's event is read for, in the same layout: tgid, gen and frame_len skipped,
# cont and missed read as one number (both 0 in most events)
FRAME = struct.Struct("<QQ8xI4xIIHBBBBHB")
HEADERS, RST_STREAM, CONTINUATION = 1, 3, 9
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20
KIND_SSL = 1  # conn_key.kind of a connection read through the decrypting uprobes
UNKNOWN_ROUTE = "(HTTP/2 headers not decoded)"
UNKNOWN_STATUS = 1  # a response whose :status could not be decoded (no HTTP status is 1)
PLACEHOLDER = (b"", b"")  # 32 bytes of table each: 128 fill the default 4096
TABLE_SIZE = 4096
WANTED = (b":method", b":path", b":status", b"grpc-status", b"content-type")
MEMO_MAX = 256  # blocks remembered per table state
STATES_MAX = 64  # table states remembered per side
# Entries queued for a table (see _Side) up to this many tables' worth, then those the newest
# evict dropped: a walk over a table's worth of queued blocks, this seldom.
QUEUED_TABLES = 8
PARSED_MAX = 4096  # requests' (method, path, content-type) remembered as their route
COUNTERS_MAX = 4096  # (route, status, grpc-status) -> counter, remembered per connection
# gRPC's mapping of an RST_STREAM error code to a status (doc/PROTOCOL-HTTP2.md): a stream
# reset after its response began has no trailers to say it.
PSEUDO = min(H2_EV_OPEN, H2_EV_CLOSE, H2_EV_DESYNC, H2_EV_UPGRADE)  # event types above a frame's
RST_GRPC = {0: 13, 1: 13, 2: 13, 3: 13, 4: 13, 6: 13, 7: 14, 8: 1, 9: 13, 10: 13, 11: 8, 12: 7}

Fields = dict[bytes, bytes]
Buffer = bytes | mmap.mmap  # events: the ring buffer's mapped memory, or bytes (tests, benches)


def _decoder(trusted: bool) -> Decoder:
    decoder = Decoder()
    decoder.header_table = _Table()
    decoder.max_allowed_table_size = 1 << 20  # what the peer's SETTINGS allowed is not seen
    if not trusted:
        for _ in range(TABLE_SIZE // 32):
            decoder.header_table.add(*PLACEHOLDER)
    return decoder


class _Route:
    """What a request's header block says, once per distinct (method, path, content-type):
    compared and hashed by identity, so a stream's counter is found without hashing strings."""

    __slots__ = ("method", "path", "truncated", "grpc")

    def __init__(self, method: str, path: str, truncated: bool, grpc: bool) -> None:
        self.method, self.path, self.truncated, self.grpc = method, path, truncated, grpc


# A request block's (method, path, content-type) as they came, or an upgrade's (method, path,
# truncated) -> its route: the same few requests recur.
_ROUTES: dict[tuple, _Route] = {}


def _interned(key: tuple, route: Callable[[], _Route]) -> _Route:
    found = _ROUTES.get(key)
    if found is None:
        if len(_ROUTES) >= PARSED_MAX:
            _ROUTES.clear()
        found = _ROUTES[key] = route()
    return found


def _request(fields: Fields | None) -> _Route:
    """The route of a request's header block; unknown names as "?"."""
    if fields is None:
        return _interned((None, None, None), lambda: _Route(UNPARSED_METHOD, UNKNOWN_ROUTE, False, False))
    raw = (fields.get(b":method"), fields.get(b":path"), fields.get(b"content-type", b""))
    return _interned(raw, lambda: _Route(*_parse(*raw)))


def _parse(method: bytes | None, path: bytes | None, content_type: bytes) -> tuple[str, str, bool, bool]:
    grpc = content_type.startswith(b"application/grpc")
    if method is None or path is None:
        return UNPARSED_METHOD, UNKNOWN_ROUTE, False, grpc
    for end in (b"?", b"#"):
        path = path.split(end, 1)[0]
    return (
        method.decode("ascii", "replace"),
        path[:PATH_LEN].decode("utf-8", "replace"),
        len(path) > PATH_LEN,
        grpc,
    )


def _number(value: bytes | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _response(fields: Fields | None) -> tuple[int, int]:
    """(:status, grpc-status) of a response's header block: UNKNOWN_STATUS when it has no
    valid :status (trailers have none), -1 when it has no grpc-status."""
    if fields is None:
        return UNKNOWN_STATUS, -1
    status = _number(fields.get(b":status"))
    grpc_status = _number(fields.get(b"grpc-status"))
    return (
        status if status is not None and 100 <= status <= 999 else UNKNOWN_STATUS,
        -1 if grpc_status is None else grpc_status,
    )


class _Table(HeaderTable):
    """A decoder's dynamic table that notes, while a block is decoded (from begin()), the
    entries the block adds, in order (those it evicts too), whether it read an entry from
    before the block (an index past the static table and the block's own entries), and
    whether it set the table's size."""

    def __init__(self) -> None:
        super().__init__()
        self.begin()

    def begin(self) -> None:
        self.added: list[tuple[bytes, bytes]] = []
        self.old = self.sized = False

    def add(self, name: bytes, value: bytes) -> None:
        self.added.append((name, value))
        super().add(name, value)

    def get_by_index(self, index: int) -> tuple[bytes, bytes]:
        if index > HeaderTable.STATIC_TABLE_LENGTH + len(self.added):
            self.old = True
        return super().get_by_index(index)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.sized = True
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


_NOWHERE: dict[bytes, tuple[object, int]] = {}  # `now` while the table's state is not known


class _Side:
    """One direction of a connection: its HPACK decoder, the frame and header block being
    assembled, and what decoded blocks said, remembered two ways.

    A block's meaning depends only on the block and the dynamic table it meets. A block that
    reads nothing of the table from before it (only the static table, literals, and entries
    it added itself) and does not set the table's size means the same whatever the table,
    and only adds entries to it: nginx sends every response so, indexing its server, date,
    content-type and length each time. Such a block, decoded once by `hpack` (its table, a
    _Table, says what the block read and added), is remembered with the entries it adds
    (`static`); when met again its entries are only queued
    (`pending`), and added to the decoder's table, by the library, before the next block that
    has to be decoded. Adding the same entries in the same order is what decoding the blocks
    would have done to the table; entries older than a table's worth of newer ones are
    dropped from the queue (`replaces`), as the table itself would have evicted them.

    Other blocks (those that name table entries, as grpcio's and most clients' do) depend on
    the table, but a busy connection goes round the same few table contents: each content seen
    gets a number (a state), and memo[state][block] is what that block says there (a
    request's route, or a response's statuses) and the state it leaves; `now` is memo[state]
    (an empty dict while entries are queued: the state is then unknown). A hit only moves
    `state`; the decoder's own table is brought to that state (`stale`) just before the next
    block that has to be decoded."""

    __slots__ = (
        "decoder",
        "outcome",
        "seq",
        "frame",
        "block",
        "state",
        "stale",
        "states",
        "snapshots",
        "memo",
        "now",
        "static",
        "static_size",
        "pending",
        "pending_size",
        "replaces",
        "remember",
    )

    def __init__(self, trusted: bool, outcome: Callable[[Fields | None], object], remember: bool) -> None:
        self.decoder = _decoder(trusted)
        self.outcome = outcome  # _request or _response: what a block of this side says
        self.remember = remember  # False: every block decoded by the library (H2Streams)
        self.seq = 0
        self.frame: list | None = None  # a frame's events so far: [[payloads], cut, first's ts]
        self.block: list | None = None  # [stream, flags, payload, bad, ts]
        self._forget_states()

    def _forget_states(self) -> None:
        table = self.decoder.header_table
        self.states: dict[tuple, int] = {}  # (entries, maxsize) -> state
        self.snapshots: list[tuple[tuple, int, int]] = []  # state -> (entries, maxsize, size)
        self.memo: list[dict[bytes, tuple[object, int]]] = []  # state -> block -> (outcome, next)
        self.state = self._state_of(table)
        self.now = self.memo[self.state]
        self.stale = False
        # block -> (outcome, entries it adds, their size), for a table of static_size bytes
        # (the size of the table the blocks met so far left)
        self.static: dict[bytes, tuple[object, tuple[tuple[bytes, bytes], ...], int]] = {}
        self.static_size = table.maxsize
        self.pending: list[tuple[tuple[tuple[bytes, bytes], ...], int]] = []  # (entries, size)
        self.pending_size = 0
        self.replaces = False  # the pending entries replace all the table's

    def _state_of(self, table) -> int:
        entries = tuple(table.dynamic_entries)
        key = (entries, table.maxsize)
        state = self.states.get(key)
        if state is None:
            if len(self.snapshots) >= STATES_MAX:
                self.states, self.snapshots, self.memo = {}, [], []
            state = self.states[key] = len(self.snapshots)
            self.snapshots.append((entries, table.maxsize, table._current_size))
            self.memo.append({})
        return state

    def distrust(self) -> None:
        """The block stream has a hole: what was added to the table meanwhile is unknown."""
        self.decoder = _decoder(False)
        self.frame = self.block = None
        self._forget_states()

    def decode(self, block: bytes) -> object:
        """What a block says (this side's outcome of its fields; of None when it cannot be
        decoded). A field that resolved to a placeholder is kept as b"" under the name b""
        (unknown), which no outcome reads."""
        hit = self.now.get(block)
        if hit is not None:
            if hit[1] != self.state:
                self.state = hit[1]
                self.now = self.memo[self.state]
                self.stale = True
                maxsize = self.snapshots[self.state][1]
                if maxsize != self.static_size:  # (a state before or after a table size update)
                    self.static, self.static_size = {}, maxsize
            return hit[0]
        static = self.static.get(block)
        if static is None:
            return self._decode(block)
        if static[1]:
            self._queue(static[1], static[2])
        return static[0]

    def _queue(self, entries: tuple[tuple[bytes, bytes], ...], size: int) -> None:
        """Entries a block added, for the decoder's table before its next decoding."""
        self.now = _NOWHERE
        self.pending.append((entries, size))
        self.pending_size += size
        if self.pending_size >= QUEUED_TABLES * self.static_size:
            self._trim()

    def _trim(self) -> None:
        """Queued entries that the newer ones evict dropped: the newest blocks' entries that
        fill the table replace all the table's."""
        kept = 0
        for i in range(len(self.pending) - 1, -1, -1):
            kept += self.pending[i][1]
            if kept >= self.static_size:
                break
        else:
            return  # they all fit
        del self.pending[:i]
        self.pending_size = kept
        self.replaces = True

    def _fields(self, headers: Iterable[HeaderTuple]) -> tuple[Fields, bool]:
        """The wanted fields of a decoded block, and whether it holds a never-indexed field
        (a secret: such a block is not remembered)."""
        fields = {}
        secret = False
        for header in headers:
            name = header[0]
            if name in WANTED or name == b"":
                fields[name] = header[1]
            secret = secret or isinstance(header, NeverIndexedHeaderTuple)
        return fields, secret

    def _settle(self) -> None:
        """The decoder's table brought to what the blocks met so far left: a remembered
        state's content, then the queued entries added by the library."""
        table: _Table = self.decoder.header_table  # type: ignore[assignment]
        if self.stale:
            entries, table._maxsize, table._current_size = self.snapshots[self.state]
            table.dynamic_entries = deque(entries)
            self.stale = False
        if self.pending:
            self._trim()
            if self.replaces:
                table.dynamic_entries.clear()
                table._current_size = 0
            for entries, _ in self.pending:
                for name, value in entries:
                    table.add(name, value)
            table.begin()  # (not a block's)
            self.pending, self.pending_size, self.replaces = [], 0, False
            self.state = self._state_of(table)
            self.now = self.memo[self.state]

    def _decode(self, block: bytes) -> object:
        """A block met for the first time in this table state: decoded by the library."""
        self._settle()
        table: _Table = self.decoder.header_table  # type: ignore[assignment]
        table.begin()
        try:
            headers = self.decoder.decode(block, raw=True)
        except (HPACKError, ValueError, IndexError, UnicodeError):
            self.distrust()
            return self.outcome(None)
        fields, secret = self._fields(headers)
        del headers  # values other than the wanted fields go now
        outcome = self.outcome(fields)
        if self.remember and not secret and not table.old and not table.sized:
            # it read nothing of the table from before it: the same whatever the table
            added = tuple(table.added)
            if len(self.static) >= MEMO_MAX:
                self.static.clear()
            self.static[block] = (outcome, added, sum(32 + len(n) + len(v) for n, v in added))
        before, memo = self.now, self.memo
        self.state = self._state_of(table)
        self.now = self.memo[self.state]
        if table.maxsize != self.static_size:  # (a table size update)
            self.static, self.static_size = {}, table.maxsize
        # (memo is self.memo: the states were not just forgotten, full)
        if self.remember and not secret and memo is self.memo and len(before) < MEMO_MAX:
            before[block] = (outcome, self.state)
        return outcome


class _Conn:
    __slots__ = ("pid", "gen", "tls", "sides", "streams", "counters")

    def __init__(self, pid: int, gen: int, tls: bool, trusted: bool, remember: bool) -> None:
        self.pid, self.gen, self.tls = pid, gen, tls
        self.sides = (_Side(trusted, _request, remember), _Side(trusted, _response, remember))
        # stream id -> [start ns, route, status (0: no response yet), response's first ns]
        self.streams: dict[int, list] = {}
        # (route, status, grpc_status) -> its counter, the one H2Streams._counters holds
        self.counters: dict[tuple[_Route, int, int], _Counter] = {}


class _Counter:
    __slots__ = ("count", "sum_ns", "hist", "entry")

    def __init__(self) -> None:
        self.count = 0
        self.sum_ns = 0
        self.hist = [0] * HIST_BUCKETS  # requests per latency bucket
        self.entry: StatEntry | None = None


class H2Streams:
    """Fed with the probe's event bytes (from the ring buffer's thread), read for counters
    (from the sampling thread)."""

    def __init__(self, remember: bool = True) -> None:
        """remember=False: every header block decoded by the `hpack` library, nothing
        remembered (the decoder of record alone: the tests' reference, bench/h2_rate.py's floor)."""
        self.remember = remember
        self._lock = threading.Lock()
        self._conns: dict[tuple[int, int, int], _Conn] = {}
        self._counters: dict[StatKey, _Counter] = {}
        self.unmatched = 0  # responses whose request was never seen (adopted connections)
        # called with (connection, direction, outcome) for every header block, as read: the
        # tests' view of what each block said
        self.observe: Callable[[_Conn, int, Any], object] | None = None

    # -- reading --

    def entries(self) -> dict[StatKey, StatEntry]:
        """Cumulative counters; an unchanged counter is the same StatEntry object as last time."""
        out = {}
        with self._lock:
            for key, c in self._counters.items():
                if c.entry is None:
                    c.entry = StatEntry(c.count, c.sum_ns, tuple((b, n) for b, n in enumerate(c.hist) if n))
                out[key] = c.entry
        return out

    def forget(self, alive: Callable[[int, int], bool]) -> None:
        """Drop the counters of processes that are gone for good."""
        with self._lock:
            self._counters = {k: c for k, c in self._counters.items() if alive(k.pid, k.gen)}
            for conn in self._conns.values():
                conn.counters.clear()  # (a connection's may be among those dropped)

    # -- feeding --

    def feed(self, data: bytes) -> None:
        """One event."""
        ring = record(data)
        with memoryview(ring) as view, view.cast("I") as words:
            self.feed_batch(ring, words, 0, len(ring))

    def feed_batch(self, chunk: Buffer, words: memoryview, start: int, stop: int) -> int:
        """The events of one ring buffer drain (sources/ringbuf.py's RingReader.drain: chunk is
        the ring's own memory, words the same as 32-bit words, its records from start up to
        stop) under one hold of the lock; the offset where the walk stopped. One loop over the
        records, each record's header read (ringbuf.records' walk, here for the cost of a
        second loop per event) and then its event handled. Written for the usual event, a
        whole header block in one event, whose block was met before in the same table state:
        per event, one unpack, one lookup of the connection, one of the block and one of its
        stream, and no call (what a block means for its stream is read here, not in a method
        of its own)."""
        unpack = FRAME.unpack_from
        conns = self._conns
        observe = self.observe
        event_size = EVENT_SIZE
        # the last event's connection, kept: most events are on the same one as the event
        # before them (a server writes its responses to a connection in a burst)
        last_ptr = last_tgid = last_kind = -1
        last_conn: Any = None
        next_at = start
        with self._lock:
            while next_at < stop:
                length = words[next_at >> 2]  # the record's header (records are 8-byte aligned)
                if length & RING_FLAGS:
                    if length & RING_BUSY:
                        break
                    next_at += ((length & ~RING_DISCARD) + RING_HEADER + 7) & ~7
                    continue
                at = next_at + RING_HEADER
                next_at = at + ((length + 7) & ~7)
                conn_ptr, ts, stream, seq, key_tgid, length, kind_type, flags, direction, kind, odd, last = (
                    unpack(chunk, at)
                )
                if kind_type >= PSEUDO:
                    self._pseudo(chunk, at)
                    last_ptr = -1  # (it may have ended or replaced that connection)
                    continue
                if conn_ptr != last_ptr or key_tgid != last_tgid or kind != last_kind:
                    conn = conns.get((conn_ptr, key_tgid, kind))
                    if conn is None:
                        continue
                    last_ptr, last_tgid, last_kind, last_conn = conn_ptr, key_tgid, kind, conn
                else:
                    conn = last_conn
                direction &= 1
                side = conn.sides[direction]
                if seq != side.seq + 1:
                    side.distrust()  # an event was lost: the ring buffer was full (counted there)
                side.seq = seq
                if (
                    last
                    and not odd
                    and kind_type == HEADERS
                    and flags & (END_HEADERS | PADDED) == END_HEADERS
                ):
                    # a whole header block, unpadded, in one event (neither continuing a frame
                    # nor cut): most events
                    side.frame = side.block = None
                    begin = at + event_size
                    block = chunk[begin + 5 if flags & PRIORITY else begin : begin + length]
                    hit = side.now.get(block)
                    outcome: Any = hit[0] if hit is not None and hit[1] == side.state else side.decode(block)
                else:  # RST_STREAM, a padded or CONTINUATION'd header block, a frame in pieces or cut
                    whole = self._frame(
                        conn, side, chunk, at, ts, stream, length, kind_type, flags, odd, last
                    )
                    if whole is None:
                        continue
                    stream, flags, outcome, ts = whole
                if observe is not None:
                    observe(conn, direction, outcome)
                # what the block says for its stream: a request's (or its trailers') route, or
                # a response's (status, grpc-status)
                streams = conn.streams
                if not direction:
                    streams.setdefault(stream, [ts, outcome, 0, 0])  # (if there: the request's trailers)
                    continue
                s = streams.get(stream)
                if s is None:
                    self.unmatched += 1
                    continue
                status, grpc_status = outcome
                if not s[2]:
                    if 100 <= status < 200:  # interim (100 Continue): the final response follows
                        continue
                    s[2] = status
                    s[3] = ts
                    if not s[1].grpc:
                        grpc_status = -1
                    elif not flags & END_STREAM:
                        continue  # the trailers carry grpc-status
                self._finish(conn, stream, s, grpc_status)
        return next_at

    def _pseudo(self, data: Buffer, at: int) -> None:
        """The probe's own events: a connection's start, end, lost frames, or upgrade."""
        (conn_ptr, ts, tgid, gen, _, _, _, key_tgid, length, kind_type, flags, _, kind, _, missed, _) = (
            EVENT.unpack_from(data, at)
        )
        key = (conn_ptr, key_tgid, kind)
        if kind_type == H2_EV_OPEN:
            old = self._conns.pop(key, None)
            if old is not None:
                self._end(old, ts)
            self._conns[key] = _Conn(tgid, gen, kind == KIND_SSL, not flags, self.remember)
            return
        conn = self._conns.get(key)
        if conn is None:
            return
        if kind_type == H2_EV_CLOSE:
            self._end(conn, ts)
            del self._conns[key]
        elif kind_type == H2_EV_DESYNC:
            del self._conns[key]  # the probe lost its frames; counted there as a lost event
        elif kind_type == H2_EV_UPGRADE:
            # the HTTP/1.1 request the connection was upgraded by: stream 1's, as the probe
            # parsed it (its path NUL-padded, already cut before any query)
            method = METHODS[flags] if 0 < flags < len(METHODS) else UNPARSED_METHOD
            raw = data[at + EVENT_SIZE : at + EVENT_SIZE + length].split(b"\0", 1)[0]
            path = raw.decode("utf-8", "replace")
            route = _interned((method, path, bool(missed)), lambda: _Route(method, path, bool(missed), False))
            conn.streams[1] = [ts, route, 0, 0]

    def _frame(
        self,
        conn: _Conn,
        side: _Side,
        chunk: Buffer,
        at: int,
        ts: int,
        stream: int,
        length: int,
        kind: int,
        flags: int,
        odd: int,
        last: int,
    ) -> tuple[int, int, Any, int] | None:
        """An event other than a whole unpadded header block (feed_batch): a frame put
        together from its events (the server's calls, its iovecs), then a reset acted on, or
        a header block put together from its frames. (stream, flags, outcome, first event's
        time) of a header block now whole, else None."""
        start = at + EVENT_SIZE
        payload = chunk[start : start + length]
        bad = False
        if not (last and not odd):  # a frame split over the server's calls, or cut: put together
            if not odd & 0xFF:  # its first event
                side.frame = [[payload], odd > 0xFF, ts]
                if not last:
                    return None
            elif side.frame is None:
                return None
            else:
                side.frame[0].append(payload)
                side.frame[1] = side.frame[1] or odd > 0xFF
                if not last:
                    return None
            pieces, bad, ts = side.frame
            payload = b"".join(pieces)
        side.frame = None
        if kind == RST_STREAM:
            code = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            self._reset(conn, stream, code, ts)
            return None
        if kind == HEADERS:
            side.block = None
            if flags & PADDED and not bad:
                pad = payload[0] if payload else 0
                payload = payload[1 : len(payload) - pad]
            if flags & PRIORITY:
                payload = payload[5:]
            if flags & END_HEADERS and not bad:  # no CONTINUATION
                return stream, flags, side.decode(payload), ts
            side.block = [stream, flags, payload, bad, ts]
        elif side.block is None or side.block[0] != stream:
            side.distrust()  # a CONTINUATION of a block not seen
            return None
        else:
            side.block[2] += payload
            side.block[3] = side.block[3] or bad
        if not flags & END_HEADERS:
            return None
        stream, first_flags, block, bad, ts = side.block
        side.block = None
        if bad:
            side.distrust()  # cut: its table updates are unknown
            return stream, first_flags, side.outcome(None), ts
        return stream, first_flags, side.decode(bytes(block)), ts

    def _reset(self, conn: _Conn, stream: int, code: int, ts: int) -> None:
        s = conn.streams.get(stream)
        if s is None:
            return
        if not s[2]:
            s[3] = ts
            self._finish(conn, stream, s, -1)  # status 0: closed before its response
        else:
            self._finish(conn, stream, s, RST_GRPC.get(code, 2) if s[1].grpc else -1)

    def _end(self, conn: _Conn, ts: int) -> None:
        """The connection ended: streams with no response were closed before it; gRPC calls
        with no trailers have no grpc-status."""
        for stream, s in list(conn.streams.items()):
            if not s[2]:
                s[3] = ts
            self._finish(conn, stream, s, -1)

    def _finish(self, conn: _Conn, stream: int, s: list, grpc_status: int) -> None:
        del conn.streams[stream]
        start, route, status, responded = s
        c = conn.counters.get((route, status, grpc_status))
        if c is None:
            c = self._counter(conn, route, status, grpc_status)
        duration = responded - start if responded > start else 0
        c.count += 1
        c.sum_ns += duration
        c.hist[bucket_of(duration)] += 1
        c.entry = None

    def _counter(self, conn: _Conn, route: _Route, status: int, grpc_status: int) -> _Counter:
        """The counter of a connection's (route, status, grpc-status), found once per connection."""
        key = StatKey(
            conn.pid,
            route.method,
            status,
            route.path,
            route.truncated,
            conn.gen,
            conn.tls,
            "grpc" if route.grpc else "h2",
            grpc_status if route.grpc else -1,
        )
        c = self._counters.get(key)
        if c is None:
            c = self._counters[key] = _Counter()
        if len(conn.counters) >= COUNTERS_MAX:
            conn.counters.clear()
        conn.counters[(route, status, grpc_status)] = c
        return c
