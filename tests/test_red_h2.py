"""HTTP/2 and gRPC through the real RED probe (bpf/red.c's frame walk, sources/h2_streams.py),
real servers and real clients, exact counts:

- a grpcio server (tests/servers/grpc_server.py) and grpcio clients over h2c: requests and
  errors per gRPC method, grpc-status counts, unary and server-streaming, 100 calls in flight
  on one connection, a call cancelled mid-request (the client's RST_STREAM), and a connection
  opened before the probe loaded (counted under method unknown, never a guessed name); a
  header block grpc-core writes in pieces over iovecs sent as one event; a raw client's bytes
  sent a few at a time, so reads cut frame headers and blocks anywhere;
- nginx with http2, in the clear and over TLS through the system libssl, driven by h2load with
  100 concurrent streams on one connection;
- a read holding more frames than the probe walks in one call: a lost event with its reason.

One probe, one grpcio server and one nginx for the module; each test counts what its own
window added.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import grpc
import pytest

from obs_tui.model import ServiceStats
from obs_tui.probe_constants import H2_FRAMES, H2_TAILS, LOST_H2_SYNC
from obs_tui.raw import UNPARSED_METHOD
from obs_tui.sources.h2_streams import EVENT, HEADERS, UNKNOWN_ROUTE
from obs_tui.sources.red import H2_IDLE_DRAIN_S, RedSource
from obs_tui.sources.ringbuf import records
from tests import servers
from tests.test_red_probes import Window

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="eBPF probes need root"),
    pytest.mark.root,
    pytest.mark.ebpf,
]

UNARY, STREAM, SLOW = "/test.Echo/Unary", "/test.Echo/Stream", "/test.Echo/Slow"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@dataclass
class Env:
    red: RedSource
    grpc: servers.Server
    web: servers.Server
    early: grpc.Channel  # connected (and used) before the probe loaded


def _channel(port: int) -> grpc.Channel:
    # one connection per channel, never shared with another channel of the process
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("grpc"), tmp_path_factory.mktemp("nginx")
    with servers.grpc_server(a) as g, servers.nginx(b, tls=True, http2=True) as web:
        early = _channel(g.port)
        early.unary_unary(UNARY)(b"before", timeout=10)  # the client's HPACK table holds its names
        red = RedSource()
        cap = red.available()
        if not cap.ok:
            early.close()
            pytest.skip(f"RED probe unavailable: {cap.reason}")
        try:
            yield Env(red, g, web, early)
        finally:
            early.close()
            red.close()


def lost(w: Window, slot: int) -> int:
    """Lost events of one reason (a LOST_* slot) in the window, host-wide."""
    return w.source.sample(time.time()).lost_by_slot[slot] - w.prev.lost_by_slot[slot]


def per_route(svc: ServiceStats) -> dict[tuple[str, str], tuple[int, int, dict[str, int]]]:
    """(method, route) -> (requests, errors, grpc_status counts)."""
    return {(r.method, r.route): (r.requests, r.errors, dict(r.grpc_status)) for r in svc.routes}


def _h2load(url: str, n: int) -> None:
    out = subprocess.run(
        ["h2load", "-n", str(n), "-c", "1", "-m", "100", url], capture_output=True, text=True, timeout=60
    )
    assert f"{n} done" in out.stdout, out.stdout + out.stderr


# ---- gRPC over h2c --------------------------------------------------------------------------


def test_grpc_requests_errors_and_statuses_per_method(env):
    """28 unary calls (20 OK, 5 NOT_FOUND, 3 INTERNAL) and 6 server-streaming calls (4 OK
    with 5 messages each, 2 UNAVAILABLE after 3 messages, in their trailers), on one
    connection: each method a route with its exact requests, errors and grpc-status counts."""
    w = Window(env.red, env.grpc.pid)
    with _channel(env.grpc.port) as ch:
        unary, stream = ch.unary_unary(UNARY), ch.unary_stream(STREAM)
        codes = []
        for request in [b"hi"] * 20 + [b"fail:NOT_FOUND"] * 5 + [b"fail:INTERNAL"] * 3:
            try:
                unary(request, timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
        assert codes.count(grpc.StatusCode.NOT_FOUND) == 5 and codes.count(grpc.StatusCode.INTERNAL) == 3
        for _ in range(4):
            assert len(list(stream(b"\x05abc", timeout=10))) == 5
        for _ in range(2):
            got = []
            with pytest.raises(grpc.RpcError) as exc:
                got.extend(stream(b"\x03fail:UNAVAILABLE", timeout=10))
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE and len(got) == 3
    section, svc = w.result(34)
    assert svc is not None, section
    assert per_route(svc) == {
        ("POST", UNARY): (28, 8, {"0": 20, "5": 5, "13": 3}),
        ("POST", STREAM): (6, 2, {"0": 4, "14": 2}),
    }
    assert (svc.requests, svc.errors, svc.protocol) == (34, 10, "grpc")
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


def test_a_header_block_written_in_pieces_is_one_event(env):
    """grpc-core writes a header block in pieces, an iovec each (a header's name from one
    slice, its value from another): every call's trailers (grpc-status, grpc-message) are cut
    so. The probe sends each block whole, as one event: 10 calls answered (headers, then
    trailers) and 10 failing (trailers only) after a first call on the same connection are
    exactly 30 response header blocks, each in one event."""
    seen = []
    feed = env.red.h2.feed_batch

    def observe(chunk: bytes, words: memoryview, start: int, stop: int) -> int:
        end = feed(chunk, words, start, stop)
        for at in records(words, start, end)[0]:
            event = EVENT.unpack_from(chunk, at)
            tgid, stream, frame_len, length, kind, direction, cont, missed, last = (
                event[i] for i in (2, 4, 5, 8, 9, 11, 13, 14, 15)
            )
            if tgid == env.grpc.pid and direction == 1 and kind == HEADERS and stream > 1:
                seen.append(length == frame_len and not cont and not missed and last == 1)
        return end

    with _channel(env.grpc.port) as ch:
        unary = ch.unary_unary(UNARY)
        assert unary(b"first", timeout=10) == b"first"  # stream 1: its literals, not counted
        w = Window(env.red, env.grpc.pid)
        env.red.h2.feed_batch = observe
        try:
            for request in [b"hi"] * 10 + [b"fail:NOT_FOUND"] * 10:
                try:
                    unary(request, timeout=10)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.NOT_FOUND
            section, svc = w.result(20)
        finally:
            del env.red.h2.feed_batch
    assert svc is not None, section
    assert seen == [True] * 30
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


def _grpc_call_in_pieces(port: int, piece: int) -> int:
    """One unary gRPC call from a raw HTTP/2 client (the `h2` library) whose bytes after the
    preface go out `piece` at a time, each piece its own segment, so the server's reads cut the
    connection's frame headers and header block anywhere; its grpc-status once the trailers
    came."""
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    conn.send_headers(
        1,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"127.0.0.1:{port}"),
            (":path", UNARY),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ],
    )
    conn.send_data(1, b"\x00\x00\x00\x00\x02hi", end_stream=True)
    out = conn.data_to_send()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(out[: len(PREFACE)])  # whole, as clients send it: it names the protocol
        for at in range(len(PREFACE), len(out), piece):
            s.sendall(out[at : at + piece])
            time.sleep(0.002)
        while True:
            data = s.recv(65536)
            assert data, "the server closed before the trailers"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.TrailersReceived):
                    return int(dict(event.headers)[b"grpc-status"])
            s.sendall(conn.data_to_send())


def test_requests_cut_anywhere_by_reads_are_counted(env):
    """A client's bytes sent 1, 5 and 7 at a time: the server's reads cut frame headers and
    header blocks at every offset (the walk keeps a cut header, and a block's pieces go as one
    frame's events). Each call counted once, under its method, with its grpc-status."""
    w = Window(env.red, env.grpc.pid)
    assert [_grpc_call_in_pieces(env.grpc.port, piece) for piece in (1, 5, 7)] == [0, 0, 0]
    section, svc = w.result(3)
    assert svc is not None, section
    assert per_route(svc) == {("POST", UNARY): (3, 0, {"0": 3})}
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


def test_100_calls_in_flight_on_one_connection(env):
    """100 unary calls started at once on one channel (one connection: grpcio multiplexes
    them as 100 concurrent streams, its reads and writes holding many frames each), then 100
    more: all 200 counted, none lost."""
    w = Window(env.red, env.grpc.pid)
    with _channel(env.grpc.port) as ch:
        unary = ch.unary_unary(UNARY)
        for _ in range(2):
            calls = [unary.future(b"x" * 100, timeout=20) for _ in range(100)]
            assert [c.result() for c in calls] == [b"x" * 100] * 100
    section, svc = w.result(200)
    assert svc is not None, section
    assert per_route(svc) == {("POST", UNARY): (200, 0, {"0": 200})}
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


def test_call_cancelled_mid_request_is_aborted(env):
    """A slow call cancelled by its client before the answer: the client resets the stream
    (RST_STREAM, CANCEL), and the call counts as aborted (closed before its response), not as
    a request; a call that completes on the same connection still counts."""
    w = Window(env.red, env.grpc.pid)
    with _channel(env.grpc.port) as ch:
        slow = ch.unary_unary(SLOW)
        call = slow.future(b"\x0a", timeout=20)  # a second's sleep
        time.sleep(0.3)
        assert call.cancel()
        assert slow(b"\x01", timeout=10) == b"\x01"
    section, svc = w.result(2)
    assert svc is not None, section
    route = next(r for r in svc.routes if r.route == SLOW)
    assert (route.requests, route.aborted, dict(route.grpc_status)) == (1, 1, {"0": 1})
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


def test_connection_opened_before_the_probe_counts_under_method_unknown(env):
    """The early channel's HPACK table was filled before the probe loaded: its client now
    sends the method's path as a reference to an entry the probe never saw. Its 10 calls are
    counted, under method unknown, and the method is never guessed."""
    w = Window(env.red, env.grpc.pid)
    unary = env.early.unary_unary(UNARY)
    for _ in range(10):
        assert unary(b"again", timeout=10) == b"again"
    section, svc = w.result(10)
    assert svc is not None, section
    assert [(r.method, r.route, r.requests) for r in svc.routes] == [(UNPARSED_METHOD, UNKNOWN_ROUTE, 10)]
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


# ---- nginx, h2c and h2 over TLS, h2load ------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_nginx_h2load_100_streams_on_one_connection(env, tls):
    """h2load with 100 concurrent streams on one connection: 500 requests of the index (200)
    and 300 of /fail (500), each counted once with its status, in the clear and through the
    system libssl."""
    if tls and not env.red.https:
        pytest.skip("HTTPS not traced here (no libssl uprobes)")
    port = env.web.h2_tls_port if tls else env.web.h2c_port
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    w = Window(env.red, env.web.pid)
    _h2load(f"{base}/", 500)
    _h2load(f"{base}/fail", 300)
    section, svc = w.result(800)
    assert svc is not None, section
    assert {(r.method, r.route): (r.requests, r.errors) for r in svc.routes} == {
        ("GET", "/"): (500, 0),
        ("GET", "/fail"): (300, 300),
    }
    assert dict(svc.status_classes) == {"2xx": 500, "5xx": 300}
    assert svc.protocol == "h2" and svc.undecoded == ()
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


def test_read_with_more_frames_than_the_walk_is_a_lost_event(env):
    """A client that sends, in one write, more frames than the probe walks in one call (PINGs):
    the connection's frames are lost to the probe, counted once as a lost event with its
    reason, never in silence; a request on a new connection is counted as before."""
    # nginx's first read of a connection takes 1 KB, its next ones all that came
    pings = (2 * H2_FRAMES * H2_TAILS + 100) * (b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678")
    w = Window(env.red, env.web.pid)
    with socket.create_connection(("127.0.0.1", env.web.h2c_port), 5) as s:
        s.sendall(PREFACE + SETTINGS + pings)
        got = b""
        while len(got) < len(pings):  # nginx answers each PING: it read them all
            chunk = s.recv(65536)
            assert chunk
            got += chunk
    _h2load(f"http://127.0.0.1:{env.web.h2c_port}/", 1)
    section, svc = w.result(1)
    assert svc is not None and svc.requests == 1, section
    assert lost(w, LOST_H2_SYNC) == 1, section.lost_reasons


# ---- h2c through HTTP/1.1's Upgrade -----------------------------------------------------------


@pytest.fixture(scope="module")
def upgrading(env, tmp_path_factory):
    """A server that accepts the upgrade (the `h2` library's: tests/servers/h2c_upgrade_server.py),
    started after the probe (marked a server at its listen())."""
    with servers.h2c_upgrade_server(tmp_path_factory.mktemp("h2c_upgrade")) as s:
        yield s


def test_h2c_upgrade_counts_the_upgraded_request_once(env, upgrading):
    """nghttp -u: GET / over HTTP/1.1 with Upgrade: h2c, answered 101 and then on HTTP/2
    stream 1 (the 101, the server's SETTINGS and stream 1's response in one write), then GET
    /missing and /fail as HTTP/2 streams on that connection; curl --http2: GET /fail upgraded
    alone. Each request counted once, over HTTP/2, with its status; the upgraded request's
    latency from its HTTP/1.1 read to stream 1's response."""
    base = f"http://127.0.0.1:{upgrading.port}"
    w = Window(env.red, upgrading.pid)
    out = subprocess.run(
        ["nghttp", "-u", "-v", f"{base}/", f"{base}/missing", f"{base}/fail"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "101 Switching Protocols" in out.stdout, out.stdout + out.stderr
    assert out.stdout.count(":status: ") == 3, out.stdout
    got = subprocess.run(
        ["curl", "-s", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", f"{base}/fail"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert got == "500 2", got
    section, svc = w.result(4)
    assert svc is not None, section
    assert per_route(svc) == {
        ("GET", "/"): (1, 0, {}),
        ("GET", "/missing"): (1, 0, {}),
        ("GET", "/fail"): (2, 2, {}),
    }
    assert dict(svc.status_classes) == {"2xx": 1, "4xx": 1, "5xx": 2}
    assert (svc.requests, svc.aborted, svc.protocol) == (4, 0, "h2")
    assert next(r for r in svc.routes if r.route == "/").p50_ms > 0
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


def test_websocket_101_is_not_taken_for_h2c(env):
    """A WebSocket handshake is answered 101 too (the `websockets` library's server and
    client): without `Upgrade: h2c` the connection is not made HTTP/2, so its frames are never
    walked as HTTP/2 ones: no HTTP/2 connection, no lost event; the h2c upgrade server next to
    it is still counted."""
    from websockets.sync.client import connect
    from websockets.sync.server import serve

    def echo(ws) -> None:
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        w = Window(env.red, os.getpid())
        with connect(f"ws://127.0.0.1:{port}/chat") as ws:
            for i in range(20):
                ws.send(f"PRI * HTTP/2.0 {i}")  # frames that would look like HTTP/2 if walked
                assert ws.recv() == f"PRI * HTTP/2.0 {i}"
            time.sleep(2 * H2_IDLE_DRAIN_S)  # the ring buffer drained
            # (this process's: the probe follows every HTTP/2 connection on the host)
            assert not [c for c in env.red.h2._conns.values() if c.pid == os.getpid()]
        server.shutdown()
        thread.join()
    section = w.source.sample(time.time())
    assert not [k for k in section.stats if k.pid == os.getpid() and k.proto in ("h2", "grpc")]
    assert section.lost_events == w.prev.lost_events
