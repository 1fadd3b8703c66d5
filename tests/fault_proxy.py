"""A small HTTP(S) proxy in front of the test Prometheus: it records requests, can demand
auth (bearer or basic) and a client certificate, and injects faults on request.

    with FaultProxy(upstream_url) as proxy:
        proxy.url            # give this to obs-tui
        proxy.mode = "slow"  # see MODES
        proxy.requests       # [(method, path_with_query)], what obs-tui sent
        proxy.spared = ("/-/ready",)  # paths forwarded whatever the mode

"down" really closes the listening socket (clients get connection refused) and "pass"
reopens it on the same port, like a Prometheus that restarts. "blackhole" accepts the
connection and reads the request, then never answers (until the mode changes).
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tests.servers import free_port

MODES = {
    "pass": "forward to Prometheus",
    "down": "listening socket closed: connection refused",
    "blackhole": "accepts and reads the request, never answers",
    "slow": "forwards after slow_s",
    "500": "HTTP 500 with Prometheus's error JSON",
    "malformed": "HTTP 200, JSON cut short",
    "garbage": "HTTP 200, a body that is not JSON at all",
    "shape": "HTTP 200, JSON of the wrong shape (strings where objects belong)",
    "leak": "HTTP 500 that echoes the credentials it got",
}
# "shape": status success, but `data` holds strings where every endpoint has objects (query,
# query_range: result rows; series: label sets; buildinfo: a version). Label names and values
# are lists of strings in Prometheus too, so those endpoints get an object instead.
SHAPE_BODY = b'{"status":"success","data":{"resultType":"vector","result":["x","y"]}}'
SHAPE_LIST_BODY = b'{"status":"success","data":["x","y"]}'


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        token: str = "",
        basic: tuple[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
        slow_s: float = 3.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.token, self.basic, self.tls, self.client_ca = token, basic, tls, client_ca
        self.slow_s = slow_s
        self.port = free_port()
        self.requests: list[tuple[str, str]] = []
        self.inflight = 0
        self.max_inflight = 0  # the most requests in progress at once
        self.auth_failures = 0
        self._mode = "pass"
        self.spared: tuple[str, ...] = ()  # paths always forwarded, whatever the mode
        self._server: http.server.ThreadingHTTPServer | None = None
        self._conns: set = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        with self._lock:
            if value == "down" and self._server is not None:
                self._stop()
            elif value != "down" and self._server is None:
                self._start()
            self._mode = value

    def __enter__(self) -> FaultProxy:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            if self._server is not None:
                self._stop()

    def _start(self) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                proxy._conns.add(self.connection)

            def finish(self) -> None:
                proxy._conns.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                proxy._handle(self)

            do_POST = do_GET

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            if self.client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(str(self.client_ca))
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        for conn in list(self._conns):  # kept-alive connections die with the server too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _authorised(self, handler) -> bool:
        got = handler.headers.get("Authorization", "")
        if self.token:
            return got == f"Bearer {self.token}"
        if self.basic:
            return got == "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
        return True

    def _reply(self, handler, code: int, body: bytes, ctype: str = "application/json") -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle(self, handler) -> None:
        with self._lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self._serve(handler)
        finally:
            with self._lock:
                self.inflight -= 1

    def _serve(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        payload = handler.rfile.read(length) if length else None
        self.requests.append((handler.command, handler.path))
        if not self._authorised(handler):
            self.auth_failures += 1
            return self._reply(handler, 401, b"Unauthorized\n", "text/plain")
        mode = "pass" if urlsplit(handler.path).path in self.spared else self._mode
        if mode == "leak":  # a server that echoes what it got (the client must redact it)
            got = handler.headers.get("Authorization", "")
            secret = self.token or (self.basic[1] if self.basic else "")
            body = f'{{"status":"error","error":"rejected {got} ({secret})"}}'.encode()
            return self._reply(handler, 500, body)
        if mode == "500":
            return self._reply(handler, 500, b'{"status":"error","errorType":"internal","error":"injected"}')
        if mode == "malformed":
            return self._reply(handler, 200, b'{"status":"success","data":{"resultType":"vec')
        if mode == "garbage":
            return self._reply(handler, 200, b"<html><body>it works!</body></html>\n", "text/html")
        if mode == "shape":
            path = urlsplit(handler.path).path
            lists = ("/api/v1/series", "/api/v1/status/buildinfo")
            return self._reply(handler, 200, SHAPE_LIST_BODY if path in lists else SHAPE_BODY)
        if mode == "blackhole":
            while self._mode == "blackhole" and self._server is not None:
                time.sleep(0.05)
            handler.close_connection = True
            return None
        if mode == "slow":
            time.sleep(self.slow_s)
        request = urllib.request.Request(self.upstream + handler.path, data=payload, method=handler.command)
        if payload is not None:
            request.add_header("Content-Type", handler.headers.get("Content-Type", ""))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                self._reply(
                    handler,
                    response.status,
                    response.read(),
                    response.headers.get("Content-Type", "application/json"),
                )
        except urllib.error.HTTPError as exc:
            self._reply(handler, exc.code, exc.read())
        except OSError:  # the client gave up (timeout) or the upstream is gone: nothing to say
            pass

    def paths(self) -> list[str]:
        return [urlsplit(p).path for _, p in self.requests]
