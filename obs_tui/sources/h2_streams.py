"""HTTP/2 and gRPC requests from the RED probe's frame events (bpf/red.c, the HTTP/2 section).

The probe walks the frames of every HTTP/2 connection of a server and sends here only the
header blocks (HEADERS and CONTINUATION payloads), RST_STREAM codes, the connection's start
and end, and the HTTP/1.1 request an h2c upgrade turned into stream 1 (method and path as its
HTTP/1 parser read them), each with its stream, direction and time. This module keeps one HPACK decoder
per connection and direction (the `hpack` package), decodes each block in order, keeps only
:method, :path (cut before its query), :status, grpc-status and content-type, and drops the
rest at once. Streams are requests: latency from the request's first HEADERS to the
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

import struct
import threading
from collections import deque
from collections.abc import Callable

from hpack import Decoder
from hpack.exceptions import HPACKError
from hpack.struct import NeverIndexedHeaderTuple

from obs_tui.probe_constants import H2_EV_CLOSE, H2_EV_DESYNC, H2_EV_OPEN, H2_EV_UPGRADE, PATH_LEN
from obs_tui.raw import METHODS, UNPARSED_METHOD, StatEntry, StatKey, bucket_of

# struct h2_event in bpf/red.c, up to its data[]
EVENT = struct.Struct("<QQIIIIIIHBBBBBBB7x")
EVENT_SIZE = EVENT.size
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
# (method, path, content-type) as they came -> _request's answer: the same few requests recur
_PARSED: dict[tuple[bytes | None, bytes | None, bytes], tuple[str, str, bool, bool]] = {}
PARSED_MAX = 4096
# gRPC's mapping of an RST_STREAM error code to a status (doc/PROTOCOL-HTTP2.md): a stream
# reset after its response began has no trailers to say it.
PSEUDO = min(H2_EV_OPEN, H2_EV_CLOSE, H2_EV_DESYNC, H2_EV_UPGRADE)  # event types above a frame's
RST_GRPC = {0: 13, 1: 13, 2: 13, 3: 13, 4: 13, 6: 13, 7: 14, 8: 1, 9: 13, 10: 13, 11: 8, 12: 7}

Fields = dict[bytes, bytes]


def _decoder(trusted: bool) -> Decoder:
    decoder = Decoder()
    decoder.max_allowed_table_size = 1 << 20  # what the peer's SETTINGS allowed is not seen
    if not trusted:
        for _ in range(TABLE_SIZE // 32):
            decoder.header_table.add(*PLACEHOLDER)
    return decoder


class _Side:
    """One direction of a connection: its HPACK decoder, the frame and header block being
    assembled, and decoded blocks remembered per table state.

    A block's meaning depends only on the block and the dynamic table it meets, and a busy
    connection goes round the same few table states: fully indexed blocks leave the table as
    it was, and a server that indexes a header in every response (nginx's server and date)
    brings the table back to the same content once it is full of them. So each table content
    seen gets a number (a state), and memo[state][block] is what that block decodes to there
    and the state it leaves. A hit only moves `state`; the decoder's own table is brought to
    that state (`stale`) just before the next block that has to be decoded."""

    __slots__ = ("decoder", "seq", "frame", "block", "state", "stale", "states", "snapshots", "memo")

    def __init__(self, trusted: bool) -> None:
        self.decoder = _decoder(trusted)
        self.seq = 0
        self.frame: list | None = None  # [type, flags, stream, payload bytes, bad, ts]
        self.block: list | None = None  # [stream, flags, payload, bad, ts]
        self._forget_states()

    def _forget_states(self) -> None:
        table = self.decoder.header_table
        self.states: dict[tuple, int] = {}  # (entries, maxsize) -> state
        self.snapshots: list[tuple[tuple, int, int]] = []  # state -> (entries, maxsize, size)
        self.memo: list[dict[bytes, tuple[Fields, int]]] = []  # state -> block -> (fields, next)
        self.state = self._state_of(table)
        self.stale = False

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

    def decode(self, block: bytes) -> Fields | None:
        """The wanted fields of a block, None when it cannot be decoded. A field that resolved
        to a placeholder is kept as b"" under the name b"" (unknown)."""
        hit = self.memo[self.state].get(block)
        if hit is not None:
            self.stale = self.stale or hit[1] != self.state
            self.state = hit[1]
            return hit[0]
        table = self.decoder.header_table
        if self.stale:
            entries, table._maxsize, table._current_size = self.snapshots[self.state]
            table.dynamic_entries = deque(entries)
            self.stale = False
        try:
            headers = self.decoder.decode(block, raw=True)
        except (HPACKError, ValueError, IndexError, UnicodeError):
            self.distrust()
            return None
        fields = {}
        secret = False
        for header in headers:
            name = header[0]
            if name in WANTED or name == b"":
                fields[name] = header[1]
            secret = secret or isinstance(header, NeverIndexedHeaderTuple)
        del headers  # values other than the wanted fields go now
        before, memo = self.state, self.memo
        self.state = self._state_of(table)
        if not secret and memo is self.memo and len(memo[before]) < MEMO_MAX:  # (not just emptied)
            memo[before][block] = (fields, self.state)
        return fields


class _Stream:
    __slots__ = ("start", "method", "path", "truncated", "grpc", "status", "responded")

    def __init__(self, start: int, method: str, path: str, truncated: bool, grpc: bool) -> None:
        self.start, self.method, self.path, self.truncated, self.grpc = start, method, path, truncated, grpc
        self.status = 0
        self.responded = 0


class _Conn:
    __slots__ = ("pid", "gen", "tls", "sides", "streams")

    def __init__(self, pid: int, gen: int, tls: bool, trusted: bool) -> None:
        self.pid, self.gen, self.tls = pid, gen, tls
        self.sides = (_Side(trusted), _Side(trusted))
        self.streams: dict[int, _Stream] = {}


class _Counter:
    __slots__ = ("count", "sum_ns", "hist", "entry")

    def __init__(self) -> None:
        self.count = 0
        self.sum_ns = 0
        self.hist: dict[int, int] = {}
        self.entry: StatEntry | None = None


def _request(fields: Fields | None) -> tuple[str, str, bool, bool]:
    """(method, path, truncated, grpc) of a request's header block; unknown names as "?"."""
    if fields is None:
        return UNPARSED_METHOD, UNKNOWN_ROUTE, False, False
    raw = (fields.get(b":method"), fields.get(b":path"), fields.get(b"content-type", b""))
    parsed = _PARSED.get(raw)
    if parsed is None:
        if len(_PARSED) >= PARSED_MAX:
            _PARSED.clear()
        parsed = _PARSED[raw] = _parse(*raw)
    return parsed


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


_NUMBERS: dict[bytes | None, int | None] = {None: None}  # a status's bytes -> its value
NUMBERS_MAX = 1024


def _number(fields: Fields | None, name: bytes) -> int | None:
    value = fields.get(name) if fields is not None else None
    try:
        return _NUMBERS[value]
    except KeyError:
        if len(_NUMBERS) >= NUMBERS_MAX:
            _NUMBERS.clear()
            _NUMBERS[None] = None
        number = _NUMBERS[value] = int(value) if value is not None and value.isdigit() else None
        return number


class H2Streams:
    """Fed with the probe's event bytes (from the ring buffer's thread), read for counters
    (from the sampling thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: dict[tuple[int, int, int], _Conn] = {}
        self._counters: dict[StatKey, _Counter] = {}
        self.unmatched = 0  # responses whose request was never seen (adopted connections)

    # -- reading --

    def entries(self) -> dict[StatKey, StatEntry]:
        """Cumulative counters; an unchanged counter is the same StatEntry object as last time."""
        out = {}
        with self._lock:
            for key, c in self._counters.items():
                if c.entry is None:
                    c.entry = StatEntry(c.count, c.sum_ns, tuple(sorted(c.hist.items())))
                out[key] = c.entry
        return out

    def forget(self, alive: Callable[[int, int], bool]) -> None:
        """Drop the counters of processes that are gone for good."""
        with self._lock:
            self._counters = {k: c for k, c in self._counters.items() if alive(k.pid, k.gen)}

    # -- feeding --

    def feed(self, data: bytes) -> None:
        """One event."""
        with self._lock:
            self._event(data, 0)

    def feed_batch(self, chunk: bytes, offsets: list[int]) -> None:
        """The events of one ring buffer drain (sources/ringbuf.py), each at its offset in
        chunk, under one hold of the lock."""
        event = self._event
        with self._lock:
            for at in offsets:
                event(chunk, at)

    def _event(self, data: bytes, at: int) -> None:
        (
            conn_ptr,
            ts,
            tgid,
            gen,
            stream,
            frame_len,
            seq,
            key_tgid,
            length,
            kind_type,
            flags,
            direction,
            kind,
            cont,
            missed,
            last,
        ) = EVENT.unpack_from(data, at)
        key = (conn_ptr, key_tgid, kind)
        if kind_type >= PSEUDO:
            self._pseudo(data, at, key, kind_type, ts, tgid, gen, flags, length, missed)
            return
        conn = self._conns.get(key)
        if conn is None:
            return
        side = conn.sides[direction & 1]
        if seq != side.seq + 1:
            side.distrust()  # an event was lost: the ring buffer was full (counted there)
        side.seq = seq
        start = at + EVENT_SIZE
        if last and not cont and not missed:  # most events: a whole frame in one event
            if kind_type == HEADERS and flags & (END_HEADERS | PADDED) == END_HEADERS:
                # a whole header block, unpadded (its priority fields skipped)
                side.frame = side.block = None
                fields = side.decode(data[start + 5 if flags & PRIORITY else start : start + length])
                self._block(conn, direction & 1, stream, flags, fields, ts)
                return
            if kind_type == RST_STREAM:
                side.frame = None
                code = int.from_bytes(data[start : start + 4], "big") if length >= 4 else 0
                self._reset(conn, stream, code, ts)
                return
        payload = data[start : start + length]
        if not cont:
            side.frame = [kind_type, flags, stream, payload, bool(missed), ts]
        elif side.frame is None:
            return
        else:
            side.frame[3] += payload
            side.frame[4] = side.frame[4] or bool(missed)
        if last:
            frame, side.frame = side.frame, None
            kind_type, flags, stream, payload, bad, ts = frame
            if kind_type == HEADERS and flags & (END_HEADERS | PADDED) == END_HEADERS and not bad:
                # a whole block in one frame, split over the server's calls (iovecs)
                side.block = None
                self._block(
                    conn,
                    direction & 1,
                    stream,
                    flags,
                    side.decode(payload[5:] if flags & PRIORITY else payload),
                    ts,
                )
                return
            self._frame(conn, side, direction & 1, frame)

    def _pseudo(
        self,
        data: bytes,
        at: int,
        key: tuple,
        kind_type: int,
        ts: int,
        tgid: int,
        gen: int,
        flags: int,
        length: int,
        missed: int,
    ) -> None:
        """The probe's own events: a connection's start, end, lost frames, or upgrade."""
        if kind_type == H2_EV_OPEN:
            old = self._conns.pop(key, None)
            if old is not None:
                self._end(old, ts)
            self._conns[key] = _Conn(tgid, gen, key[2] == KIND_SSL, trusted=not flags)
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
            path = data[at + EVENT_SIZE : at + EVENT_SIZE + length].split(b"\0", 1)[0]
            conn.streams[1] = _Stream(ts, method, path.decode("utf-8", "replace"), bool(missed), False)

    def _frame(self, conn: _Conn, side: _Side, direction: int, frame: list) -> None:
        kind, flags, stream, payload, bad, ts = frame
        if kind == RST_STREAM:
            code = int.from_bytes(payload[:4], "big") if len(payload) >= 4 else 0
            self._reset(conn, stream, code, ts)
            return
        if kind == HEADERS:
            if flags & PADDED and not bad:
                pad = payload[0] if payload else 0
                payload = payload[1 : len(payload) - pad]
            if flags & PRIORITY:
                payload = payload[5:]
            side.block = [stream, flags, payload, bad, ts]
        elif side.block is None or side.block[0] != stream:
            side.distrust()  # a CONTINUATION of a block not seen
            return
        else:
            side.block[2] += payload
            side.block[3] = side.block[3] or bad
        if not flags & END_HEADERS:
            return
        stream, first_flags, block, bad, ts = side.block
        side.block = None
        if bad:
            side.distrust()  # cut: its table updates are unknown
            fields = None
        else:
            fields = side.decode(bytes(block))
        self._block(conn, direction, stream, first_flags, fields, ts)

    def _block(
        self, conn: _Conn, direction: int, stream: int, flags: int, fields: Fields | None, ts: int
    ) -> None:
        """A header block decoded: a request's (or its trailers), or a response's."""
        if direction:
            self._response(conn, stream, fields, flags & END_STREAM, ts)
        else:
            self._request(conn, stream, fields, ts)

    def _request(self, conn: _Conn, stream: int, fields: Fields | None, ts: int) -> None:
        if stream not in conn.streams:  # else: the request's trailers
            conn.streams[stream] = _Stream(ts, *_request(fields))

    def _response(self, conn: _Conn, stream: int, fields: Fields | None, end: int, ts: int) -> None:
        s = conn.streams.get(stream)
        if s is None:
            self.unmatched += 1
            return
        if not s.status:
            status = _number(fields, b":status")
            s.status = status if status is not None and 100 <= status <= 999 else UNKNOWN_STATUS
            if 100 <= s.status < 200:  # interim (100 Continue): the final response follows
                s.status = 0
                return
            s.responded = ts
            if not s.grpc:
                self._finish(conn, stream, s, -1)
                return
            if not end:
                return  # the trailers carry grpc-status
        grpc_status = _number(fields, b"grpc-status")
        self._finish(conn, stream, s, -1 if grpc_status is None else grpc_status)

    def _reset(self, conn: _Conn, stream: int, code: int, ts: int) -> None:
        s = conn.streams.get(stream)
        if s is None:
            return
        if not s.status:
            s.responded = ts
            self._finish(conn, stream, s, -1)  # status 0: closed before its response
        else:
            self._finish(conn, stream, s, RST_GRPC.get(code, 2) if s.grpc else -1)

    def _end(self, conn: _Conn, ts: int) -> None:
        """The connection ended: streams with no response were closed before it; gRPC calls
        with no trailers have no grpc-status."""
        for stream, s in list(conn.streams.items()):
            if not s.status:
                s.responded = ts
            self._finish(conn, stream, s, -1)

    def _finish(self, conn: _Conn, stream: int, s: _Stream, grpc_status: int) -> None:
        del conn.streams[stream]
        # a plain tuple finds the StatKey with the same fields (a NamedTuple hashes and
        # compares as one), which is only built for a new counter
        key = (
            conn.pid,
            s.method,
            s.status,
            s.path,
            s.truncated,
            conn.gen,
            conn.tls,
            "grpc" if s.grpc else "h2",
            grpc_status if s.grpc else -1,
        )
        c = self._counters.get(key)  # type: ignore[call-overload]
        if c is None:
            c = self._counters[StatKey(*key)] = _Counter()
        duration = max(0, s.responded - s.start)
        c.count += 1
        c.sum_ns += duration
        b = bucket_of(duration)
        c.hist[b] = c.hist.get(b, 0) + 1
        c.entry = None
