"""A threading HTTP/1.1 server for the RED tests: python py_server.py PORT [CERT KEY].

With OBS_TEST_FORKING=1 it forks a child per connection instead (socketserver's ForkingMixIn):
the child reads the request, answers and exits, while the parent only accepts. With
OBS_TEST_PREFORK=N it listens, then forks N workers that accept and answer on the inherited
socket (gunicorn's shape, without its process titles), and the parent only waits.

With OBS_TEST_COMM=NAME in the environment the process names itself NAME (its comm, what
obs-tui shows as the service and exports as service_name), so a test can tell it apart from
every other python3 on a shared host.

/sleep/MS  answers 200 after MS milliseconds
/status/N  answers with status N
anything else answers 200
"""

import ctypes
import os
import signal
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from socketserver import ForkingMixIn


class ForkingHTTPServer(ForkingMixIn, HTTPServer):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        status = 200
        if parts[0] == "sleep" and len(parts) > 1:
            time.sleep(int(parts[1]) / 1000)
        elif parts[0] == "status" and len(parts) > 1:
            status = int(parts[1])
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def main():
    name = os.environ.get("OBS_TEST_COMM")
    if name:
        PR_SET_NAME = 15
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    kind = ThreadingHTTPServer
    if os.environ.get("OBS_TEST_FORKING"):
        kind = ForkingHTTPServer
    elif os.environ.get("OBS_TEST_PREFORK"):
        kind = HTTPServer  # each worker answers one connection at a time
    server = kind(("127.0.0.1", int(sys.argv[1])), Handler)
    if len(sys.argv) > 3:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    workers = int(os.environ.get("OBS_TEST_PREFORK") or 0)
    if workers:
        pids = []
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                server.serve_forever()
                os._exit(0)
            pids.append(pid)

        def stop(*_):
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        while True:
            signal.pause()
    server.serve_forever()


if __name__ == "__main__":
    main()
