"""A gRPC server for the RED tests: grpcio with hand-written generic handlers (raw bytes, no
generated code), HTTP/2 in the clear on 127.0.0.1:PORT.

    python grpc_server.py PORT

/test.Echo/Unary answers its request; a request beginning with "fail:NAME" is answered
with that grpc.StatusCode (e.g. fail:NOT_FOUND). /test.Echo/Stream sends the request back
as many messages as its first byte says (server streaming), then fails the same way if the
rest begins with "fail:NAME", after those messages (its trailers carry the status).
/test.Echo/Slow sleeps as many tenths of a second as its request's first byte says (for
cancellation).
"""

from __future__ import annotations

import sys
import time
from concurrent import futures

import grpc


def _fail(request: bytes, context) -> None:
    if request.startswith(b"fail:"):
        context.abort(getattr(grpc.StatusCode, request[5:].decode()), "failed on request")


def unary(request: bytes, context) -> bytes:
    _fail(request, context)
    return request


def stream(request: bytes, context):
    for _ in range(request[0]):
        yield request[1:] or b"."
    _fail(request[1:], context)


def slow(request: bytes, context) -> bytes:
    time.sleep(request[0] / 10)
    return request


def main() -> None:
    port = int(sys.argv[1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
