"""The demo's sample shop and its load generator (stdlib only, loopback only).

    python -m obs_tui.demo_service serve PORT      # the shop: names itself demo-shop
    python -m obs_tui.demo_service load PORT RPS   # keep-alive clients: names itself demo-load

Routes, with latencies and failures chosen so every pane has something to show:

    GET  /api/products        1-3 ms
    GET  /api/products/{id}   5-15 ms
    GET  /api/search          20-80 ms, 1 % 500
    POST /api/checkout        60-180 ms, 4 % 503 (a slow, flaky payment call)
    GET  /health              immediate
"""

from __future__ import annotations

import ctypes
import http.client
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_NAME = "demo-shop"
LOAD_NAME = "demo-load"

# path prefix -> (method, min ms, max ms, failure ratio, failure status)
ROUTES = {
    "/api/products/": ("GET", 5, 15, 0.0, 500),
    "/api/products": ("GET", 1, 3, 0.0, 500),
    "/api/search": ("GET", 20, 80, 0.01, 500),
    "/api/checkout": ("POST", 60, 180, 0.04, 503),
    "/health": ("GET", 0, 0, 0.0, 500),
}
# what the load generator asks for, in proportion
MIX = (
    ["/api/products"] * 4
    + ["/api/products/{id}"] * 5
    + ["/api/search"] * 3
    + ["/api/checkout"] * 2
    + ["/health"]
)


def set_process_name(name: str) -> None:
    """The comm obs-tui shows as the service (and exports as service_name)."""
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass  # only the displayed name differs


def _route(path: str) -> tuple[str, int, int, float, int] | None:
    path = path.split("?", 1)[0]
    for prefix, spec in ROUTES.items():
        if path == prefix or (
            prefix.endswith("/") and path.startswith(prefix) and path[len(prefix) :].isdigit()
        ):
            return spec
    return None


class Shop(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        spec = _route(self.path)
        if spec is None or spec[0] != self.command:
            status = 404 if spec is None else 405
        else:
            _, low, high, fail, fail_status = spec
            if high:
                time.sleep(random.uniform(low, high) / 1000)
            status = fail_status if random.random() < fail else 200
        body = b'{"ok": true}\n' if status == 200 else b'{"ok": false}\n'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


def serve(port: int) -> None:
    set_process_name(SERVICE_NAME)
    server = ThreadingHTTPServer(("127.0.0.1", port), Shop)
    server.daemon_threads = True
    server.serve_forever()


def _client(port: int, rps: float, stop: threading.Event) -> None:
    rng = random.Random()
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            while not stop.is_set():
                path = rng.choice(MIX).replace("{id}", str(rng.randint(1, 500)))
                method = "POST" if path == "/api/checkout" else "GET"
                conn.request(method, path, body=b"{}" if method == "POST" else None)
                conn.getresponse().read()
                stop.wait(rng.expovariate(rps))
        except (OSError, http.client.HTTPException):
            stop.wait(0.5)  # the shop is starting or gone: try again shortly
        finally:
            conn.close()


def load(port: int, rps: float, clients: int = 4) -> None:
    set_process_name(LOAD_NAME)
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client, args=(port, rps / clients, stop), daemon=True)
        for _ in range(clients)
    ]
    for t in threads:
        t.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop.set()


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "serve":
        serve(int(argv[1]))
    elif len(argv) >= 3 and argv[0] == "load":
        load(int(argv[1]), float(argv[2]))
    else:
        print("usage: python -m obs_tui.demo_service serve PORT | load PORT RPS", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
