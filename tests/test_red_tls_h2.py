"""HTTP/2 over TLS beyond the system libssl: Node's http2 module (its own OpenSSL) and Go's
net/http h2 (crypto/tls), decrypted by the uprobes of test_red_tls.py and decoded by the
HTTP/2 path of the probe. Exact counts, routes and statuses, service protocol "h2".

Skipped until the HTTP/2 decoding is in (a service's `protocol`): the uprobes hand the
decrypted bytes to the same path as libssl's, so nothing here is specific to them.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from obs_tui.model import ServiceStats
from tests import servers
from tests.test_faults import as_root
from tests.test_red_probes import Window
from tests.test_red_tls import go_binaries, traced, wait_looked_at  # noqa: F401 (fixture)

pytestmark = [
    as_root,
    pytest.mark.skipif(
        "protocol" not in {f.name for f in dataclasses.fields(ServiceStats)},
        reason="needs the HTTP/2 decoding (a service's protocol)",
    ),
]


def curl_h2(urls: list[str]) -> list[str]:
    """Every URL on one h2 connection (ALPN), as "version status" lines."""
    args = ["curl", "-sk", "--http2", "-w", "%{http_version} %{http_code}\\n"]
    for url in urls:
        args += ["-o", "/dev/null", url]
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout.split("\n")[
        :-1
    ]


def _check(red, srv, paths: list[str], classes: dict[str, int], routes: dict[str, int]) -> None:
    assert traced(red, srv.pid)
    w = Window(red, srv.pid)
    base = f"https://127.0.0.1:{srv.port}"
    lines = curl_h2([base + p for p in paths])
    assert [line.split()[0] for line in lines] == ["2"] * len(paths)
    section, svc = w.result(len(paths))
    assert svc is not None, section
    assert (svc.requests, dict(svc.status_classes)) == (len(paths), classes), (svc, section.lost_reasons)
    assert {(r.method, r.route): r.requests for r in svc.routes} == {("GET", r): n for r, n in routes.items()}
    assert svc.protocol == "h2" and svc.undecoded_total == ()
    assert not w.lost_but_others_http1(), w.lost_but_others_http1()


PATHS = ["/"] * 12 + ["/status/503"] * 3 + ["/status/404"] * 2 + [f"/users/{i}" for i in range(4)]
CLASSES = {"2xx": 16, "4xx": 2, "5xx": 3}
ROUTES = {"/": 12, "/status/{id}": 5, "/users/{id}": 4}


def test_node_http2_over_its_own_openssl_exact(red, tmp_path):
    with servers.node_h2_server(tmp_path) as srv:
        wait_looked_at(red, srv.pid)
        _check(red, srv, PATHS, CLASSES, ROUTES)


def test_go_h2_over_crypto_tls_exact(red, go_binaries, tmp_path):  # noqa: F811 (fixture)
    with servers.go_server(tmp_path, go_binaries["symbols"]) as srv:
        wait_looked_at(red, srv.pid)
        _check(red, srv, PATHS, CLASSES, ROUTES)
