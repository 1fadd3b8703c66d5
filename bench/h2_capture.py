"""Captures the probe's HTTP/2 events of real servers and clients into tests/data/, for
tests/test_h2_streams.py, which replays them to check that what H2Streams remembers says
what the `hpack` library decodes.

    sudo .venv/bin/python bench/h2_capture.py [NAME ...]

The real RED probe is loaded; each capture runs its server and client and keeps the events
whose server is that server (other HTTP/2 traffic on the host is left out), in the ring
buffer's layout (an 8-byte header holding the record's length, the record, padding to 8
bytes; the records cut to their used bytes), zstd-compressed, as h2-events-NAME.zst:

- grpcio-h2load: the grpcio server, h2load sending 1500 gRPC calls (4 connections, 32
  streams each) round-robin over three methods (OK, NOT_FOUND in trailers, UNIMPLEMENTED);
- nginx-h2load: nginx h2c, h2load sending 1500 requests the same way over /, /missing, /fail;
- grpcio-client: the grpcio server and a grpcio client (grpc-core's encoder): 28 unary and
  6 server-streaming calls on one connection, some failing;
- nginx-curl: nginx h2 over TLS (the system libssl), curl sending 21 requests on one
  connection;
- node-curl, go-curl: Node's http2 module (its own OpenSSL) and a Go net/http server
  (crypto/tls, built with golang-go), curl the same way.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import grpc  # noqa: E402
import zstandard  # noqa: E402
from h2_rate import red_probe  # noqa: E402

from obs_tui.sources.h2_streams import EVENT, EVENT_SIZE  # noqa: E402
from obs_tui.sources.red import RedSource  # noqa: E402
from obs_tui.sources.ringbuf import records  # noqa: E402
from tests import servers  # noqa: E402
from tests.test_red_tls import wait_looked_at  # noqa: E402

DATA = REPO / "tests" / "data"
GRPC_BODY = b"\x00\x00\x00\x00\x0f\x01fail:NOT_FOUND"
CURL_PATHS = ["/"] * 12 + ["/status/503"] * 3 + ["/status/404"] * 2 + [f"/users/{i}" for i in range(4)]


class Recorder:
    """The events the drain thread hands H2Streams, copied as they go by."""

    def __init__(self, red: RedSource) -> None:
        self.events: list[bytes] = []
        feed = red.h2.feed_batch

        def recorded(buffer, words, start, stop):
            end = feed(buffer, words, start, stop)
            for at in records(words, start, end)[0]:
                self.events.append(bytes(buffer[at : at + EVENT_SIZE + EVENT.unpack_from(buffer, at)[8]]))
            return end

        red.h2.feed_batch = recorded  # type: ignore[method-assign]

    def of(self, pid: int, run: Callable[[], object]) -> list[bytes]:
        """The events of the server pid while run() ran (and its last ones drained)."""
        first = len(self.events)
        run()
        time.sleep(1.0)
        return [e for e in self.events[first:] if EVENT.unpack_from(e)[2] == pid]


def h2load(*args: str) -> None:
    subprocess.run(["h2load", *args], check=True, capture_output=True, timeout=120)


def curl(port: int) -> None:
    args = ["curl", "-sk", "--http2"]
    for path in CURL_PATHS:
        args += ["-o", "/dev/null", f"https://127.0.0.1:{port}{path}"]
    subprocess.run(args, check=True, capture_output=True, timeout=60)


def grpc_calls(port: int) -> None:
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
        unary, stream = ch.unary_unary("/test.Echo/Unary"), ch.unary_stream("/test.Echo/Stream")
        for request in [b"hi"] * 20 + [b"fail:NOT_FOUND"] * 5 + [b"fail:INTERNAL"] * 3:
            try:
                unary(request, timeout=10)
            except grpc.RpcError:
                pass
        for request in [b"\x05abc"] * 4 + [b"\x03fail:UNAVAILABLE"] * 2:
            try:
                list(stream(request, timeout=10))
            except grpc.RpcError:
                pass


def write(name: str, events: list[bytes]) -> None:
    ring = bytearray()
    for e in events:
        ring += struct.pack("<II", len(e), 0) + e + bytes(-len(e) % 8)
    (DATA / f"h2-events-{name}.zst").write_bytes(zstandard.ZstdCompressor(level=19).compress(bytes(ring)))
    print(f"h2-events-{name}.zst: {len(events)} events")


def main() -> int:
    wanted = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for sub in ("g", "n", "node", "go"):
            (tmp / sub).mkdir()
        body = tmp / "body.bin"
        body.write_bytes(GRPC_BODY)
        binary = servers.build_go_server(tmp / "go")
        with (
            servers.grpc_server(tmp / "g") as g,
            servers.nginx(tmp / "n", tls=True, http2=True) as web,
            servers.node_h2_server(tmp / "node") as node,
            servers.go_server(tmp / "go", binary) as go,
            red_probe("h2_capture") as red,
        ):
            for pid in (node.pid, go.pid):
                wait_looked_at(red, pid)
            rec = Recorder(red)
            grpc_uris = [f"http://127.0.0.1:{g.port}/test.Echo/{m}" for m in ("Unary", "Stream", "Missing")]
            grpc_load = ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body)]
            nginx_uris = [f"http://127.0.0.1:{web.h2c_port}{p}" for p in ("/", "/missing", "/fail")]
            captures = {
                "grpcio-h2load": (
                    g.pid,
                    lambda: h2load("-n", "1500", "-c", "4", "-m", "32", *grpc_load, *grpc_uris),
                ),
                "nginx-h2load": (
                    web.pid,
                    lambda: h2load("-n", "1500", "-c", "4", "-m", "32", *nginx_uris),
                ),
                "grpcio-client": (g.pid, lambda: grpc_calls(g.port)),
                "nginx-curl": (web.pid, lambda: curl(web.h2_tls_port)),
                "node-curl": (node.pid, lambda: curl(node.port)),
                "go-curl": (go.pid, lambda: curl(go.port)),
            }
            for name, (pid, run) in captures.items():
                if not wanted or name in wanted:
                    write(name, rec.of(pid, run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
