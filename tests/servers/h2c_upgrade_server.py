"""An HTTP/2 server that accepts HTTP/1.1's upgrade to h2c (RFC 7540, 3.2), for the RED tests:
the `h2` library's protocol state machine over plain sockets, a thread per connection, on
127.0.0.1:PORT. (nginx, Node's http2 and grpcio do not offer the upgrade.)

    python h2c_upgrade_server.py PORT

A request with `Upgrade: h2c` and `HTTP2-Settings` is answered `101 Switching Protocols`, then
on HTTP/2 stream 1; the 101, the server's SETTINGS and stream 1's whole response go out in one
write, as a server that buffers its output sends them. Later requests on the connection are
HTTP/2 streams. A path's status: / 200, /fail 500, anything else 404. A request without the
upgrade is answered over HTTP/1.1 (200) and the connection closed.
"""

from __future__ import annotations

import socket
import socketserver
import sys

import h2.config
import h2.connection
import h2.events

SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


def _status(path: bytes) -> int:
    return {b"/": 200, b"/fail": 500}.get(path.split(b"?", 1)[0], 404)


def _respond(conn: h2.connection.H2Connection, stream: int, path: bytes) -> None:
    status = _status(path)
    body = b"%d\n" % status
    conn.send_headers(
        stream, [(":status", str(status)), ("content-length", str(len(body))), ("server", "h2-upgrade")]
    )
    conn.send_data(stream, body, end_stream=True)


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                return
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        path = lines[0].split(b" ")[1]
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        settings = fields.get(b"http2-settings")
        if fields.get(b"upgrade", b"").lower() != b"h2c" or settings is None:
            body = b"%d\n" % _status(path)
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_upgrade_connection(settings_header=settings)
        _respond(conn, 1, path)
        sock.sendall(SWITCHING + conn.data_to_send())
        data = rest
        while True:
            if data:
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        headers = dict(event.headers)
                        _respond(conn, event.stream_id, headers.get(b":path", b"/"))
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
            data = sock.recv(65536)
            if not data:
                return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
