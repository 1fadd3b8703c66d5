"""A gRPC server for the RED tests: grpcio with hand-written generic handlers (raw bytes, no
generated code), HTTP/2 in the clear on 127.0.0.1:PORT.

    python grpc_server.py PORT [COUNTS_FILE]


/test.Echo/Unary answers its request; a request beginning with "fail:NAME" is answered
with that grpc.StatusCode (e.g. fail:NOT_FOUND). /test.Echo/Stream sends the request back
as many messages as its first byte says (server streaming), then fails the same way if the
rest begins with "fail:NAME", after those messages (its trailers carry the status).
/test.Echo/Slow sleeps as many tenths of a second as its request's first byte says (for
cancellation). With COUNTS_FILE, the calls it answered, per method and status code (an
unknown method: UNIMPLEMENTED), are written there as JSON on SIGUSR1 (bench/h2_rate.py's
truth).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

_counts: dict[str, dict[str, int]] = {}
_counts_lock = threading.Lock()


def _count(method: str, code: grpc.StatusCode) -> None:
    with _counts_lock:
        per = _counts.setdefault(method, {})
        per[code.name] = per.get(code.name, 0) + 1


class _Unimplemented(grpc.ServerInterceptor):
    """Counts the calls of methods no handler serves (grpcio answers them UNIMPLEMENTED)."""

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None:
            _count(details.method, grpc.StatusCode.UNIMPLEMENTED)
        return handler


def _fail(method: str, request: bytes, context) -> None:
    if request.startswith(b"fail:"):
        code = getattr(grpc.StatusCode, request[5:].decode())
        _count(method, code)
        context.abort(code, "failed on request")
    _count(method, grpc.StatusCode.OK)


def unary(request: bytes, context) -> bytes:
    _fail("/test.Echo/Unary", request, context)
    return request


def stream(request: bytes, context):
    for _ in range(request[0]):
        yield request[1:] or b"."
    _fail("/test.Echo/Stream", request[1:], context)


def slow(request: bytes, context) -> bytes:
    time.sleep(request[0] / 10)
    return request


def main() -> None:
    port = int(sys.argv[1])
    if len(sys.argv) > 2:
        path = sys.argv[2]

        def dump(signum, frame) -> None:
            with _counts_lock:
                text = json.dumps(_counts)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)

        signal.signal(signal.SIGUSR1, dump)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), interceptors=(_Unimplemented(),))
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
