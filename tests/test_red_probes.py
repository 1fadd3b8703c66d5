"""The RED probe against real servers on 127.0.0.1: N requests sent => exactly N counted on
the serving pid, by status class, over keep-alive and fresh connections, HTTP and HTTPS."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import time

import pytest

from obs_tui.analysis.red import LOST_REASONS, red_section
from obs_tui.probe_constants import LOST_UNPARSED
from obs_tui.sources.red import H2_DRAIN_S, RedSource
from tests import servers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="eBPF probes need root")


def _tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connection(port, tls):
    if tls:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=_tls_context())
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def keepalive(port, paths, tls=False):
    """All paths over one connection, one after the other."""
    conn = _connection(port, tls)
    statuses = []
    for path in paths:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    conn.close()
    return statuses


def fresh(port, paths, tls=False):
    """One new connection per path."""
    return [status for path in paths for status in keepalive(port, [path], tls)]


class Window:
    """Samples around some traffic and returns that server's numbers for the window."""

    def __init__(self, source, pid):
        self.source, self.pid = source, pid
        self.prev = source.sample(time.time())
        self.t0 = time.time()

    def result(self, expected):
        # A response is counted at the exit of the server's write, which may come a moment
        # after the client has read it: wait for the expected count, then once more to be
        # sure nothing extra arrives (past one drain of the HTTP/2 events, which reach the
        # counts a drain at a time).
        deadline = time.time() + 5
        while True:
            section = red_section(self.prev, self.source.sample(time.time()), time.time() - self.t0)
            svc = next((s for s in section.services if s.pid == self.pid), None)
            done = svc is not None and svc.requests + svc.aborted >= expected
            if done or time.time() > deadline:
                time.sleep(H2_DRAIN_S + 0.05)
                self.last = self.source.sample(time.time())
                section = red_section(self.prev, self.last, time.time() - self.t0)
                svc = next((s for s in section.services if s.pid == self.pid), None)
                return section, svc

    def lost_but_others_http1(self) -> tuple[tuple[str, int], ...]:
        """The events lost in the window by reason (after result()), less the one reason
        other tests' HTTP/1 servers give while they start (lost events are counted
        host-wide): a response on a connection whose request was read before the probe knew
        its server. HTTP/2 and TLS tests check the rest; none of their servers' events can
        carry that reason (it is the HTTP/1 parser's)."""
        before, after = self.prev.lost_by_slot, self.last.lost_by_slot
        assert len(before) == len(after) == len(LOST_REASONS)
        return tuple(
            (why, n - m)
            for slot, (why, n, m) in enumerate(zip(LOST_REASONS, after, before))
            if n > m and slot != LOST_UNPARSED
        )


def _classes(svc):
    return dict(svc.status_classes)


def _assert_exact(section, svc, total, classes):
    assert svc is not None, f"no service for pid: {section}"
    assert svc.requests == total
    assert _classes(svc) == classes
    assert svc.errors == classes.get("5xx", 0)
    assert section.lost_events == 0


def test_nginx_http_exact(red, tmp_path):
    with servers.nginx(tmp_path) as srv:
        w = Window(red, srv.pid)
        s1 = keepalive(srv.port, ["/"] * 40 + ["/missing"] * 15 + ["/fail"] * 7 + ["/?token=hunter2"] * 3)
        s2 = fresh(srv.port, ["/"] * 20 + ["/fail"] * 5 + ["/users/42"] * 4)
        assert s1.count(200) == 43 and s2.count(500) == 5
        section, svc = w.result(94)
    _assert_exact(section, svc, 94, {"2xx": 63, "4xx": 19, "5xx": 12})
    assert srv.port in svc.ports and svc.comm == "nginx"
    routes = {(r.method, r.route): r.requests for r in svc.routes}
    assert routes[("GET", "/")] == 63 and routes[("GET", "/users/{id}")] == 4
    assert "hunter2" not in repr(section) and "hunter2" not in repr(red.sample(time.time()))


@pytest.mark.parametrize("start", [servers.python_server, servers.nginx])
def test_connection_accepted_before_the_probe_is_counted(start, tmp_path):
    """A keep-alive connection that predates obs-tui (the usual case in an incident) is seen
    from its next request, in a server that accepts nothing after the probe attached."""
    with start(tmp_path) as srv:
        conn = _connection(srv.port, False)
        conn.request("GET", "/before")
        conn.getresponse().read()
        source = RedSource()
        assert source.available().ok
        try:
            w = Window(source, srv.pid)
            for i in range(25):
                conn.request("GET", f"/users/{i}")
                conn.getresponse().read()
            section, svc = w.result(25)
        finally:
            conn.close()
            source.close()
    assert svc is not None and svc.requests == 25 and section.lost_events == 0
    assert [(r.route, r.requests) for r in svc.routes] == [("/users/{id}", 25)]


def test_nginx_connection_closed_before_response(red, tmp_path):
    with servers.nginx(tmp_path) as srv:
        w = Window(red, srv.pid)
        for _ in range(6):
            with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
                keepalive(srv.port, ["/drop"])
        keepalive(srv.port, ["/"] * 3)
        section, svc = w.result(9)
    assert svc.aborted == 6 and svc.requests == 3
    assert [(r.route, r.aborted) for r in svc.routes if r.aborted] == [("/drop", 6)]


def test_response_to_a_client_that_already_left_is_a_response(red, tmp_path):
    """The client sends its request and closes at once (wrk stopping mid-flight does this):
    the server still writes its response, which is counted as one, not as closed before it.
    On loopback the client's RST reaches the server inside that very write (bpf/red.c)."""
    with servers.python_server(tmp_path) as srv:
        w = Window(red, srv.pid)
        for _ in range(8):
            with socket.create_connection(("127.0.0.1", srv.port)) as s:
                s.sendall(b"GET /sleep/30 HTTP/1.1\r\nHost: x\r\n\r\n")
        section, svc = w.result(8)
    assert (svc.requests, svc.aborted) == (8, 0)
    assert section.lost_events == 0


def test_nginx_https_exact(red, tmp_path):
    if not red.https:
        pytest.skip(red.available().reason)
    with servers.nginx(tmp_path, tls=True) as srv:
        w = Window(red, srv.pid)
        base = f"https://127.0.0.1:{srv.tls_port}"
        # curl reuses one connection for all URLs of an invocation: keep-alive.
        subprocess.run(
            ["curl", "-sk", "-o", "/dev/null"]
            + [f"{base}/"] * 12
            + [f"{base}/fail"] * 4
            + [f"{base}/nope"] * 2,
            check=True,
        )
        for _ in range(5):
            subprocess.run(["curl", "-sk", "-o", "/dev/null", f"{base}/"], check=True)
        fresh(srv.tls_port, ["/fail"] * 3, tls=True)
        keepalive(srv.tls_port, ["/"] * 10, tls=True)
        section, svc = w.result(36)
    # Counted once on nginx (not again from the encrypted bytes), never on curl.
    _assert_exact(section, svc, 36, {"2xx": 27, "4xx": 2, "5xx": 7})
    assert [s.pid for s in section.services if s.comm == "curl"] == []


def test_python_http_exact_and_latency(red, tmp_path):
    with servers.python_server(tmp_path) as srv:
        w = Window(red, srv.pid)
        keepalive(srv.port, ["/"] * 30 + ["/status/503"] * 4 + ["/status/404"] * 6)
        fresh(srv.port, ["/status/500"] * 5 + ["/"] * 10)
        keepalive(srv.port, ["/sleep/50"] * 20)
        section, svc = w.result(75)
    _assert_exact(section, svc, 75, {"2xx": 60, "4xx": 6, "5xx": 9})
    sleep = next(r for r in svc.routes if r.route == "/sleep/{id}")
    assert sleep.requests == 20
    assert abs(sleep.p50_ms - 50) <= 5, sleep


def test_python_https_exact(red, tmp_path):
    # CPython's ssl module calls SSL_read_ex/SSL_write_ex.
    if not red.https:
        pytest.skip(red.available().reason)
    with servers.python_server(tmp_path, tls=True) as srv:
        w = Window(red, srv.pid)
        keepalive(srv.port, ["/"] * 15 + ["/status/502"] * 3, tls=True)
        fresh(srv.port, ["/"] * 5, tls=True)
        section, svc = w.result(23)
    _assert_exact(section, svc, 23, {"2xx": 20, "5xx": 3})


def test_node_http_exact(red, tmp_path):
    with servers.node_server(tmp_path) as srv:
        w = Window(red, srv.pid)
        keepalive(srv.port, ["/"] * 25 + ["/status/500"] * 5 + ["/status/404"] * 5)
        fresh(srv.port, ["/"] * 10 + ["/status/503"] * 2)
        section, svc = w.result(47)
    _assert_exact(section, svc, 47, {"2xx": 35, "4xx": 5, "5xx": 7})
    assert svc.comm.startswith("node") and srv.port in svc.ports


def test_hostile_paths_never_break_the_analysis(red, tmp_path):
    long_path = "/a/" + "b" * 200
    with servers.nginx(tmp_path) as srv:
        w = Window(red, srv.pid)
        raw = [
            b"GET /\xff\xfe\x01bad HTTP/1.1\r\nHost: x\r\n\r\n",
            f"GET {long_path}?q=secret HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        for request in raw:
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                sock.sendall(request)
                sock.recv(4096)
        section, svc = w.result(3)
    assert svc.requests == 3
    routes = [r.route for r in svc.routes]
    assert "/a/*" in routes  # the path was cut by the probe: its last segment is partial
    assert all(r.isprintable() for r in routes) and "secret" not in repr(section)


def test_every_method_and_path_end_exact(red, tmp_path):
    # Each method puts the path at another offset (4..8 bytes in) and the probe assembles it
    # from two aligned words: paths ending at and around word boundaries, under every method,
    # come out byte for byte, cut at ' ', '?' and '#', and join their stats by hash.
    requests = [
        ("GET", "/abcdefg", "?x=secret1"),
        ("POST", "/abcdefgh", "#secret2"),
        ("PUT", "/a", "?secret3"),
        ("PATCH", "/abcdefghijklmno", ""),
        ("DELETE", "/d/e/l", "?secret4"),
        ("HEAD", "/" + "h" * 23, "#x"),
        ("OPTIONS", "/opt/" + "o" * 30, "?secret5"),
        ("OPTIONS", "/o", ""),
    ]
    with servers.nginx(tmp_path) as srv:
        prev = red.sample(time.time())
        w = Window(red, srv.pid)
        for method, path, tail in requests:
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                sock.sendall(
                    f"{method} {path}{tail} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                while sock.recv(4096):
                    pass
        section, svc = w.result(len(requests))
        cur = red.sample(time.time())
    assert svc.requests == len(requests) and section.lost_events == 0
    seen = sorted(
        (k.method, k.path)
        for k, v in cur.stats.items()
        if k.pid == srv.pid and v.count - (prev.stats[k].count if k in prev.stats else 0)
    )
    assert seen == sorted((m, p) for m, p, _ in requests)
    assert "secret" not in repr(cur)


def test_without_root_says_why(monkeypatch):
    from obs_tui import doctor

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(doctor, "_effective_caps", lambda: 0)  # and no CAP_BPF/CAP_PERFMON
    cap = RedSource().available()
    assert not cap.ok and "root" in cap.reason
