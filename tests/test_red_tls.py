"""HTTPS beyond the system libssl, through the real RED probe and real servers and clients:

- Node's `https` module (its own bundled OpenSSL, exported from the node binary): uprobes on
  the SSL_* symbols of /usr/bin/node, attached when the server listens after the probe loaded;
- Go's net/http over crypto/tls, built here with Debian's golang-go: uprobes at the entry and
  at every RET of crypto/tls.(*Conn).Read and Write, never uretprobes; the server keeps
  serving with them attached and after they detach;
- a Go binary built without symbols: its TLS connections stay counted as undecoded, with why.

Exact counts, routes and statuses; one server of each kind for the module.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from obs_tui.analysis.red import red_section
from obs_tui.sources.red import RedSource
from obs_tui.sources.tls_targets import GO_READ, GO_WRITE, inspect, mapped_objects
from obs_tui.sources.tls_uprobes import NOTHING_KNOWN, TlsUprobes
from obs_tui.tui.panes.requests import undecoded_lines
from tests import servers
from tests.test_faults import as_root
from tests.test_red_probes import Window, _tls_context, fresh, keepalive
from tests.test_red_truth import json_service, metrics

needs_go = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v go"], capture_output=True).returncode != 0,
    reason="golang-go not installed (scripts/setup.sh test)",
)


@pytest.fixture(scope="module")
def go_binaries(tmp_path_factory) -> dict[str, Path]:
    """go_server.go built once for the module: with symbols, and stripped (-s -w)."""
    if subprocess.run(["sh", "-c", "command -v go"], capture_output=True).returncode != 0:
        pytest.skip("golang-go not installed (scripts/setup.sh test)")
    directory = tmp_path_factory.mktemp("go")
    return {
        "symbols": servers.build_go_server(directory),
        "stripped": servers.build_go_server(directory, stripped=True),
    }


def wait_looked_at(source: RedSource, pid: int, timeout: float = 30.0) -> None:
    """Tick the source until it has read the server's maps and attached what it found there:
    the probe notes its listen(), a tick hands it to the worker, a later tick attaches."""
    assert source.tls is not None
    deadline = time.time() + timeout
    while time.time() < deadline:
        source.sample(time.time())
        if source.tls.looked_at(pid) and not source.tls.pending():
            source.sample(time.time())
            return
        time.sleep(0.05)
    raise TimeoutError(f"pid {pid} not looked at in {timeout} s")


def traced(source: RedSource, pid: int) -> bool:
    assert source.tls is not None
    return bool(source.tls.traced() & set(mapped_objects(pid)))


@pytest.fixture(scope="module")
def node(red, tmp_path_factory):
    """Started after the probe loaded: found through its listen()."""
    with servers.node_server(tmp_path_factory.mktemp("node"), tls=True) as srv:
        wait_looked_at(red, srv.pid)
        yield srv


@pytest.fixture(scope="module")
def go(red, go_binaries, tmp_path_factory):
    with servers.go_server(tmp_path_factory.mktemp("go-run"), go_binaries["symbols"]) as srv:
        wait_looked_at(red, srv.pid)
        yield srv


@pytest.fixture(scope="module")
def go_stripped(red, go_binaries, tmp_path_factory):
    with servers.go_server(tmp_path_factory.mktemp("go-stripped"), go_binaries["stripped"]) as srv:
        wait_looked_at(red, srv.pid)
        yield srv


def _exact(section, svc, classes: dict[str, int], routes: dict[str, int]) -> None:
    """Every request counted, by status class and GET route; nothing lost or undecoded."""
    assert svc is not None, section
    total = sum(classes.values())
    assert (svc.requests, dict(svc.status_classes)) == (total, classes), (svc, section.lost_reasons)
    assert svc.errors == classes.get("5xx", 0)
    assert section.lost_events == 0, section.lost_reasons
    assert {(r.method, r.route): r.requests for r in svc.routes} == {("GET", r): n for r, n in routes.items()}
    assert svc.undecoded_total == () and svc.undecoded_reason == ""
    assert json_service(section, svc.pid)["undecoded"] == {}


# ---- finding the TLS code: file reading only ------------------------------------------------


def test_node_binary_exports_openssl_symbols_probed_at_their_addresses():
    node = Path("/usr/bin/node")
    if not node.exists():
        pytest.skip("node not installed")
    target = inspect(str(node))
    assert target is not None and target.library == "openssl" and target.reason == ""
    nm = subprocess.run(["nm", "-D", str(node)], capture_output=True, text=True, check=True).stdout
    exported = {line.split()[2]: int(line.split()[0], 16) for line in nm.splitlines() if " T SSL_" in line}
    by_symbol = {(p.symbol, p.fn, p.uretprobe): p.address for p in target.probes}
    assert by_symbol[("SSL_read", "ssl_read_enter", False)] == exported["SSL_read"]
    assert by_symbol[("SSL_write_ex", "ssl_write_exit", True)] == exported["SSL_write_ex"]
    assert by_symbol[("SSL_free", "ssl_free_enter", False)] == exported["SSL_free"]
    # the request side last: nothing starts before its end can be seen
    assert target.probes[-1].fn in ("ssl_read_enter", "ssl_read_ex_enter")


def test_go_crypto_tls_probed_at_entry_and_every_ret_never_uretprobes(go_binaries):
    binary = go_binaries["symbols"]
    target = inspect(str(binary))
    assert target is not None and target.library == "go" and target.reason == ""
    assert not [p for p in target.probes if p.uretprobe]
    objdump = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    for symbol, fn in ((GO_READ, "go_tls_read_return"), (GO_WRITE, "go_tls_write_return")):
        body = objdump.split(f"<{symbol}>:\n", 1)[1].split("\n\n", 1)[0]
        rets = {
            int(line.split(":")[0], 16) for line in body.splitlines() if line.split("\t")[-1].strip() == "ret"
        }
        assert rets and {p.address for p in target.probes if p.fn == fn} == rets
    with open(binary, "rb") as f:
        assert [s for s in ELFFile(f).iter_sections() if s.name == ".symtab"]


def test_stripped_go_binary_has_nothing_to_probe_and_says_why(go_binaries):
    target = inspect(str(go_binaries["stripped"]))
    assert target is not None and target.probes == ()
    assert "without a symbol table" in target.reason and "-ldflags=-s" in target.reason


def test_a_process_with_no_tls_code_known_says_so_and_unreadable_maps_say_why():
    """The worker's verdicts before any probe: nothing known in its maps (a static binary, Java),
    or maps it cannot read (a process gone; another user's once root is dropped)."""
    proc = subprocess.Popen(["sleep", "60"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    tls = TlsUprobes()
    try:
        tls.look_at([proc.pid, gone.pid])
        assert tls.wait(30)
        assert tls.reason(proc.pid) == NOTHING_KNOWN and not tls.pending()
        assert tls.reason(gone.pid).startswith("its memory maps cannot be read")
        assert tls.reason(12345678) == ""  # never looked at: no verdict yet
    finally:
        tls.close()
        proc.kill()
        proc.wait()


# ---- through the probe ------------------------------------------------------------------------


@as_root
def test_node_https_exact(red, node):
    """Node's https server, started after the probe loaded: its own OpenSSL's SSL_read and
    SSL_write are probed in /usr/bin/node, and every request is counted, none undecoded."""
    assert traced(red, node.pid)
    w = Window(red, node.pid)
    statuses = keepalive(node.port, ["/"] * 15 + ["/status/500"] * 3 + ["/status/404"] * 4, tls=True)
    statuses += fresh(node.port, [f"/users/{i}" for i in range(5)] + ["/sleep/40"] * 2, tls=True)
    assert statuses.count(200) == 22
    section, svc = w.result(29)
    _exact(
        section,
        svc,
        {"2xx": 22, "4xx": 4, "5xx": 3},
        {"/": 15, "/users/{id}": 5, "/status/{id}": 7, "/sleep/{id}": 2},
    )
    assert {s.scheme for s in svc.series} == {"https"}
    sleep = next(r for r in svc.routes if r.route == "/sleep/{id}")
    assert sleep.p50_ms >= 40 * (1 - 1 / 16), sleep  # the handler's sleep, within a bucket's width


def _curl_http11(url: str, n: int) -> list[str]:
    """n requests on one connection, HTTP/1.1 forced (Go would answer h2 to curl's ALPN)."""
    args = ["curl", "-sk", "--http1.1", "-w", "%{http_version} %{http_code}\\n"]
    for _ in range(n):
        args += ["-o", "/dev/null", url]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    return out.split("\n")[:-1]


@as_root
@needs_go
def test_go_https_http11_exact(red, go):
    """Go's net/http over crypto/tls (Go 1.17+ register ABI): entry and RET uprobes on
    (*tls.Conn).Read and Write give every request, by route and status, and the latency."""
    assert traced(red, go.pid)
    w = Window(red, go.pid)
    statuses = keepalive(go.port, ["/"] * 20 + ["/status/503"] * 4 + ["/status/404"] * 3, tls=True)
    statuses += fresh(go.port, [f"/users/{i}" for i in range(6)] + ["/sleep/50"] * 3, tls=True)
    assert statuses.count(200) == 29
    assert _curl_http11(f"https://127.0.0.1:{go.port}/curl", 5) == ["1.1 200"] * 5
    section, svc = w.result(41)
    routes = {"/": 20, "/users/{id}": 6, "/status/{id}": 7, "/sleep/{id}": 3, "/curl": 5}
    _exact(section, svc, {"2xx": 34, "4xx": 3, "5xx": 4}, routes)
    sleep = next(r for r in svc.routes if r.route == "/sleep/{id}")
    assert sleep.p50_ms >= 50 * (1 - 1 / 16), sleep  # the handler's sleep, within a bucket's width
    assert svc.comm == "go_server" and go.port in svc.ports


@as_root
@needs_go
def test_go_connection_closed_before_its_response_is_aborted(red, go):
    """crypto/tls.(*Conn).Close ends the connection, as SSL_free does: a request whose client
    left before the answer is counted as aborted, not lost, and the connection is forgotten."""
    w = Window(red, go.pid)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", go.port)) as raw:
            tls = _tls_context().wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(b"GET /sleep/300 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.05)
            tls.close()
    keepalive(go.port, ["/"] * 2, tls=True)
    time.sleep(0.4)  # the handlers finish their sleep, write to the closed connection, and close it
    section, svc = w.result(5)
    assert svc.requests + svc.aborted == 5 and svc.requests >= 2, svc
    assert section.lost_events == 0, section.lost_reasons


@as_root
@needs_go
def test_stripped_go_binary_is_counted_as_undecoded_tls_with_why(red, go_stripped):
    """Built with -ldflags=-s -w: no symbol table, so crypto/tls cannot be found. Its three
    TLS connections are counted as undecoded, and every surface says why."""
    assert not traced(red, go_stripped.pid)
    w = Window(red, go_stripped.pid)
    for _ in range(3):
        assert keepalive(go_stripped.port, ["/"] * 2, tls=True) == [200, 200]
    deadline = time.time() + 5
    while True:
        section = red_section(w.prev, red.sample(time.time()), time.time() - w.t0)
        svc = next((s for s in section.services if s.pid == go_stripped.pid), None)
        if svc is not None and dict(svc.undecoded_total).get("tls", 0) >= 3 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert svc is not None, section
    assert (svc.undecoded, svc.undecoded_total, svc.requests) == ((("tls", 3),), (("tls", 3),), 0)
    assert go_stripped.port in svc.ports and svc.comm == "go_server_strip"  # comm: 15 bytes
    assert "without a symbol table" in svc.undecoded_reason and "go_server_stripped" in svc.undecoded_reason
    doc = json_service(section, go_stripped.pid)
    assert doc["undecoded"] == {"tls": 3} and doc["undecoded_reason"] == svc.undecoded_reason
    assert svc.undecoded_reason in undecoded_lines(svc)
    samples = metrics(section)["obs_http_server_undecoded_connections"]
    assert [(s.labels["kind"], s.value) for s in samples if s.labels["service_name"] == svc.name] == [
        ("tls", 3.0)
    ]


@as_root
@needs_go
def test_go_server_keeps_serving_with_probes_attached_and_after_they_detach(go_binaries, tmp_path):
    """A Go server already listening when a probe loads (found at load, not at its listen()):
    its requests counted while the uprobes sit inside its crypto/tls, and it goes on serving,
    unharmed, once they are detached."""
    copy = tmp_path / "go_server"  # its own file: the uprobes of this probe only
    copy.write_bytes(go_binaries["symbols"].read_bytes())
    copy.chmod(0o755)
    with servers.go_server(tmp_path, copy) as srv:
        source = RedSource()
        assert source.available().ok
        try:
            assert traced(source, srv.pid)
            w = Window(source, srv.pid)
            for _ in range(4):
                assert keepalive(srv.port, ["/"] * 25, tls=True) == [200] * 25
            section, svc = w.result(100)
            assert svc is not None and svc.requests == 100 and section.lost_events == 0
        finally:
            source.close()
        assert fresh(srv.port, ["/"] * 10, tls=True) == [200] * 10
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=_tls_context())
        conn.request("GET", "/status/201")
        assert conn.getresponse().status == 201
        conn.close()
        proc = servers.psutil.Process(srv.pid)
        assert proc.status() != servers.psutil.STATUS_ZOMBIE


@as_root
@needs_go
def test_module_servers_never_crashed(node, go, go_stripped):
    for srv in (node, go, go_stripped):
        assert servers.psutil.pid_exists(srv.pid)
        assert servers.psutil.Process(srv.pid).status() != servers.psutil.STATUS_ZOMBIE
