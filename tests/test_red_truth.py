"""Nothing the RED probe sees is missed in silence, through the real probe, real servers and
real clients:

- a fork-per-connection server (Python's ForkingMixIn) is one service, with its ports and
  every request, in the section, in `snapshot --json` and on /metrics; pre-fork workers
  (nginx) stay services of their own;
- connections the probe cannot decode (TLS it cannot decrypt, in test_red_tls.py) are counted
  per service, by kind, and HTTP/2 ones (in the clear and inside TLS) are decoded, not undecoded;
- a request line sent a byte at a time and requests pipelined in one write are counted, each
  with its status; a response to a request the probe never saw start is a lost event with its
  own reason.
"""

from __future__ import annotations

import ctypes
import socket
import subprocess
import time

import pytest

from obs_tui.analysis.derived import derive
from obs_tui.analysis.red import UNPARSED_ROUTE, red_section
from obs_tui.exporter import FrameCollector
from obs_tui.model import Frame
from obs_tui.raw import UNPARSED_METHOD
from obs_tui.snapshot import frame_to_json
from tests import servers
from tests.test_bad_traffic import send_raw
from tests.test_faults import as_root
from tests.test_red_probes import Window, fresh, keepalive

pytestmark = as_root
NEVER_SEEN = "responses to requests never seen (no read that began them)"


def frame_of(section) -> Frame:
    return derive(
        Frame(
            host="test",
            taken_at=time.time(),
            duration_s=1.0,
            uptime_s=1.0,
            interval_s=1.0,
            capabilities=(),
            sources=(),
            red=section,
        )
    )


def json_service(section, pid: int) -> dict:
    return next(s for s in frame_to_json(frame_of(section))["red"]["services"] if s["pid"] == pid)


def metrics(section) -> dict[str, list]:
    collector = FrameCollector()
    collector.publish(frame_of(section))
    return {f.name: f.samples for f in collector.collect()}


def routes(svc) -> dict[tuple[str, str], int]:
    return {(r.method, r.route): r.requests for r in svc.routes}


# ---- fork-per-connection servers ------------------------------------------------------------


def test_fork_per_connection_server_is_one_service(red, tmp_path):
    """50 requests, each read and answered by a child that exits at once: one service, the
    listening parent, with its port and all 50, on every surface; and still 50 once the
    children's counters have left the kernel's table (the server's totals never go down)."""
    with servers.python_server(tmp_path, forking=True, name="forking-web") as srv:
        w = Window(red, srv.pid)
        statuses = fresh(srv.port, ["/users/1"] * 40 + ["/status/503"] * 10)
        assert statuses.count(503) == 10
        section, svc = w.result(50)
        assert svc is not None, section
        assert (svc.requests, svc.errors, svc.comm) == (50, 10, "forking-web"), (svc, section.lost_reasons)
        assert srv.port in svc.ports
        assert routes(svc) == {("GET", "/users/{id}"): 40, ("GET", "/status/{id}"): 10}
        children = {pid for (pid, _), (owner, _) in red._owners.items() if owner == srv.pid != pid}
        assert len(children) == 50  # one process per connection, each counted under the server
        assert not [
            s for s in section.services if s.pid in children or (s.pid != srv.pid and srv.port in s.ports)
        ]
        assert section.lost_events == 0
        doc = json_service(section, srv.pid)
        assert (doc["requests"], doc["errors"], doc["comm"]) == (50, 10, "forking-web")
        assert srv.port in doc["ports"]
        counts = {}
        for sample in metrics(section)["http_server_request_duration_seconds"]:
            if sample.name.endswith("_count"):
                name = sample.labels["service_name"]
                counts[name] = counts.get(name, 0) + sample.value
        assert counts.get(f"forking-web:{srv.port}") == 50 and not [n for n in counts if n.startswith("?")]

        # The children are gone: their counters move out of the kernel's table into the
        # server's, and nothing is counted twice or lost in the move.
        red._prune(time.time())
        assert not {key.pid for key in red._read_stats()} & children
        again = red_section(w.prev, red.sample(time.time()), time.time() - w.t0)
        svc = next(s for s in again.services if s.pid == srv.pid)
        assert (svc.requests, svc.errors) == (50, 10)
        assert sum(r.requests for r in svc.routes_total) == 50


def test_prefork_workers_stay_their_own_services(red, tmp_path):
    """nginx's master listens and forks the worker that accepts and answers: the worker (which
    names itself) is the service, as before; the master gets no row."""
    with servers.nginx(tmp_path) as srv:
        master = servers.psutil.Process(srv.pid).ppid()
        w = Window(red, srv.pid)
        fresh(srv.port, ["/"] * 12)
        section, svc = w.result(12)
    assert svc.requests == 12 and srv.port in svc.ports
    assert master not in {s.pid for s in section.services}


def test_prefork_workers_of_the_same_program_are_their_server(red, tmp_path):
    """A server that listens and forks workers that accept on the inherited socket, all
    running its own program (gunicorn without process titles): one service, the listening
    parent, with every worker's requests; no row for a worker."""
    import psutil

    with servers.python_server(tmp_path, prefork=3, name="prefork-web") as srv:
        deadline = time.time() + 10
        while len(psutil.Process(srv.pid).children()) < 3 and time.time() < deadline:
            time.sleep(0.05)
        workers = {p.pid for p in psutil.Process(srv.pid).children()}
        w = Window(red, srv.pid)
        fresh(srv.port, ["/"] * 30)
        section, svc = w.result(30)
        served = {pid for (pid, _), (owner, _) in red._owners.items() if owner == srv.pid != pid}
    assert svc.requests == 30 and srv.port in svc.ports and svc.comm == "prefork-web"
    assert served and served <= workers  # the workers answered, and counted under the parent
    assert not {s.pid for s in section.services} & workers


# ---- connections the probe cannot decode -------------------------------------------------


def tls_requests(port: int, connections: int, per_connection: int) -> None:
    for _ in range(connections):
        keepalive(port, ["/"] * per_connection, tls=True)


def test_tls_through_the_system_libssl_is_decoded_not_flagged(red, tmp_path):
    if not red.https:
        pytest.skip(red.available().reason)
    with servers.python_server(tmp_path, tls=True) as srv:
        w = Window(red, srv.pid)
        tls_requests(srv.port, 3, 2)
        section, svc = w.result(6)
        # Known from the kernel too (it called the traced libssl), not only from its
        # /proc/PID/maps, which another user's process keeps closed once root is dropped;
        # cleared when the server exits.
        word = red._bpf[b"ssl_users"][ctypes.c_uint32(srv.pid >> 6)].value
    assert word & (1 << (srv.pid & 63))
    assert not red._bpf[b"ssl_users"][ctypes.c_uint32(srv.pid >> 6)].value & (1 << (srv.pid & 63))
    assert svc.requests == 6 and svc.undecoded_total == ()
    assert json_service(section, srv.pid)["undecoded"] == {}


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame


def h2_prior_knowledge(port: int) -> bytes:
    """An HTTP/2 client that knows the server speaks it: the preface, then SETTINGS."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(H2_PREFACE + SETTINGS)
        return s.recv(9)  # the server's SETTINGS frame header


def curl_h2(url: str, *flags: str) -> str:
    out = subprocess.run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_version}", *flags, url],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return out.stdout


def test_http2_connections_are_decoded_not_undecoded(red, tmp_path):
    """nginx with http2: a prior-knowledge client that sends only the preface and SETTINGS
    (no request: nothing to count), curl with prior knowledge in the clear, and curl with h2
    over TLS (decrypted through libssl): each curl request counted as an HTTP/2 request, with
    its status, and no connection left undecoded (HTTP/2 now is; only what the probe cannot
    follow, a full connections table, stays counted as undecoded http2)."""
    with servers.nginx(tmp_path, tls=red.https, http2=True) as srv:
        w = Window(red, srv.pid)
        assert h2_prior_knowledge(srv.h2c_port)[3] == 4  # a SETTINGS frame: nginx speaks h2
        for path in ("/", "/fail"):
            assert curl_h2(f"http://127.0.0.1:{srv.h2c_port}{path}", "--http2-prior-knowledge") == "2"
        expected = 2
        if red.https:
            for path in ("/", "/missing"):
                assert curl_h2(f"https://127.0.0.1:{srv.h2_tls_port}{path}", "--http2") == "2"
            expected += 2
        section, svc = w.result(expected)
    assert svc is not None, section
    assert dict(svc.status_classes) == {"2xx": 1 + red.https, "4xx": red.https, "5xx": 1}
    assert (svc.requests, svc.errors, svc.protocol) == (expected, 1, "h2")
    assert svc.undecoded == () and section.lost_events == 0, (svc, section.lost_reasons)
    assert json_service(section, srv.pid)["undecoded"] == {}
    assert json_service(section, srv.pid)["protocol"] == "h2"


# ---- requests split across reads, and pipelined -------------------------------------------


def byte_by_byte(sock: socket.socket, data: bytes, pause: float = 0.002) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in data:
        sock.send(bytes([b]))
        time.sleep(pause)


def read_responses(sock: socket.socket, n: int) -> bytes:
    """Until n responses (status lines) have arrived: the servers answer with small bodies."""
    out = b""
    deadline = time.time() + 10
    while out.count(b"HTTP/1.1 ") < n and time.time() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


@pytest.fixture(params=["nginx", "python"])
def server(request, tmp_path):
    start = servers.nginx if request.param == "nginx" else servers.python_server
    with start(tmp_path) as srv:
        yield srv


def test_requests_sent_byte_by_byte_are_counted(red, server):
    """Five request lines sent a byte per write on new connections (the first two bytes, then
    a pause, so the server's first read cannot name a method), and one on a keep-alive
    connection after a whole request: all seven answered and counted, the six split ones as
    requests whose line was not parsed, with their latency from their first byte."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    pause = 0.1

    def split(s: socket.socket) -> None:
        byte_by_byte(s, request[:2])
        time.sleep(pause)
        byte_by_byte(s, request[2:])

    w = Window(red, server.pid)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), 10) as s:
            split(s)
            assert b" 200 " in read_responses(s, 1)
    with socket.create_connection(("127.0.0.1", server.port), 10) as s:
        s.sendall(request)
        read_responses(s, 1)
        split(s)
        assert b" 200 " in read_responses(s, 1)
    section, svc = w.result(7)
    assert svc.requests == 7 and section.lost_events == 0
    assert routes(svc) == {("GET", "/"): 1, (UNPARSED_METHOD, UNPARSED_ROUTE): 6}
    unparsed = next(r for r in svc.routes if r.method == UNPARSED_METHOD)
    # from the first byte read, so the pause is in it (not ~0)
    assert unparsed.p50_ms >= pause * 1000, unparsed


def test_pipelined_requests_are_counted(red, server):
    """Six requests in one write on one connection: six responses, six requests counted, the
    five behind the first as requests whose line was not parsed."""
    n = 6
    w = Window(red, server.pid)
    with socket.create_connection(("127.0.0.1", server.port), 10) as s:
        s.sendall(b"".join(f"GET /p/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(n)))
        assert read_responses(s, n).count(b"HTTP/1.1 ") == n
    section, svc = w.result(n)
    assert svc.requests == n and section.lost_events == 0
    counted = routes(svc)
    assert counted.pop((UNPARSED_METHOD, UNPARSED_ROUTE)) == n - 1
    assert sum(counted.values()) == 1
    # on /metrics, semconv's method for one the instrumentation does not know
    other = [
        s.value
        for s in metrics(section)["http_server_request_duration_seconds"]
        if s.name.endswith("_count")
        and s.labels["http_request_method"] == "_OTHER"
        and s.labels["service_name"] == svc.name
        and s.labels["http_route"] == UNPARSED_ROUTE
    ]
    assert other == [n - 1]


def test_a_response_to_a_request_never_seen_is_a_lost_event_with_its_reason(red, tmp_path):
    """Bytes that cannot begin a request (a control byte first) draw a 400 from nginx: the
    probe saw no read that began a request, so the response is counted as lost, by reason."""
    with servers.nginx(tmp_path) as srv:
        w = Window(red, srv.pid)
        for _ in range(3):
            assert b" 400 " in send_raw(srv.port, b"\x01\x02 not a request\r\n\r\n")
        deadline = time.time() + 5
        while True:
            section = red_section(w.prev, red.sample(time.time()), time.time() - w.t0)
            if section.lost_events >= 3 or time.time() > deadline:
                break
            time.sleep(0.05)
    assert section.lost_events == 3
    assert dict(section.lost_reasons) == {NEVER_SEEN: 3}
    assert frame_to_json(frame_of(section))["red"]["lost_reasons"] == {NEVER_SEEN: 3}


# ---- through the command line ----------------------------------------------------------------


def test_snapshot_json_shows_the_forking_server_once_and_node_tls_decoded(tmp_path):
    """`obs-tui snapshot --json --duration` while a fork-per-connection server and a Node HTTPS
    server are busy: the first is one service (its pid, its port, its requests), the second
    has its requests decrypted (uprobes in the node binary, found at load) and nothing
    undecoded."""
    import json
    import sys
    import threading

    (tmp_path / "f").mkdir()
    (tmp_path / "n").mkdir()
    stop = threading.Event()

    def busy(forking_port: int, node_port: int) -> None:
        while not stop.is_set():
            fresh(forking_port, ["/x"] * 3)
            tls_requests(node_port, 1, 1)
            stop.wait(0.05)

    with (
        servers.python_server(tmp_path / "f", forking=True, name="forking-cli") as srv,
        servers.node_server(tmp_path / "n", tls=True) as node,
    ):
        client = threading.Thread(target=busy, args=(srv.port, node.port))
        client.start()
        try:
            out = subprocess.run(
                [sys.executable, "-m", "obs_tui", "snapshot", "--json", "--duration", "4"],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            stop.set()
            client.join(30)
    assert out.returncode == 0, out.stderr
    services = json.loads(out.stdout)["red"]["services"]
    mine = [s for s in services if srv.port in s["ports"] or s["comm"] == "forking-cli"]
    assert [(s["pid"], s["ports"]) for s in mine] == [(srv.pid, [srv.port])]
    assert mine[0]["requests"] > 0 and mine[0]["undecoded"] == {}
    (js,) = [s for s in services if s["pid"] == node.pid]
    assert js["ports"] == [node.port] and js["requests"] > 0
    assert js["undecoded"] == {} and js["undecoded_reason"] == ""
