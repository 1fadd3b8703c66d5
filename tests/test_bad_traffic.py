"""Bad input on the wire, through the real probe and real servers (nginx and Python's).

1. Property: for any bytes a client opens a connection with, the probe records exactly what
   its request-line recognition says (bpf/red.c: parse_method, take_path), modelled here in a
   few lines: one request with that method and path when the bytes start with a known method
   and a space, nothing otherwise. Hypothesis generates request-ish lines and plain garbage.
2. Malformed traffic (garbage, truncated request lines, huge paths, slowloris, pipelining)
   sent alongside good requests leaves the good requests' counts exact.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obs_tui.analysis.red import red_section
from obs_tui.probe_constants import PATH_LEN
from obs_tui.raw import METHODS, UNPARSED_METHOD
from tests import servers
from tests.test_faults import as_root
from tests.test_red_probes import Window

REPO = Path(__file__).resolve().parent.parent
REQ_BYTES = 8 * (1 + PATH_LEN // 8 + 1)  # REQ_WORDS: what one read copies
pytestmark = as_root


def probe_view(first_read: bytes) -> tuple[str, str] | None:
    """(method, path) the probe records for a connection whose first read is these bytes."""
    if len(first_read) < 8:
        return None  # shorter than any request line
    method = next(
        (m for m in METHODS[1:] if m != UNPARSED_METHOD and first_read.startswith(m.encode() + b" ")), None
    )
    if method is None:
        return None
    buf = first_read[:REQ_BYTES].ljust(REQ_BYTES, b"\0")  # bytes past the read are zeroed
    area = buf[len(method) + 1 : len(method) + 1 + PATH_LEN]
    ends = [i for i in (area.find(c) for c in b" ?#\0") if i >= 0]
    path = area[: min(ends)] if ends else area  # (a path filling PATH_LEN is cut: truncated)
    return method, path.decode("utf-8", "replace")


def test_probe_view_model():
    assert probe_view(b"GET /a?b HTTP/1.1\r\n") == ("GET", "/a")
    assert probe_view(b"OPTIONS * HTTP/1.1\r\n") == ("OPTIONS", "*")
    assert probe_view(b"GET /\r\n") is None  # 7 bytes
    assert probe_view(b"get / HTTP/1.1\r\n") is None and probe_view(b"GETS / HTTP/1.1") is None
    assert probe_view(b"GET /" + b"x" * 200) == ("GET", "/" + "x" * 95)


@pytest.fixture(scope="module")
def targets():
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        (Path(tmp) / "n").mkdir()
        (Path(tmp) / "p").mkdir()
        yield [
            stack.enter_context(servers.nginx(Path(tmp) / "n")),
            stack.enter_context(servers.python_server(Path(tmp) / "p")),
        ]


def send_raw(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """One connection: the bytes in one send, then end of input; what came back."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout) as s, contextlib.suppress(OSError):
        s.sendall(data)  # (a server may answer and close before it has read all: a reset)
        s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(65536):
            out += chunk
    return out


def since(red, pid: int, prev) -> Counter:
    """(method, path) -> requests (any status, aborted included) for pid since prev, as the
    request-line parser named them: the answers to lines it could not parse are counted apart
    (method "?", tests/test_red_truth.py), whether a server answers them is the server's call."""
    got = Counter()
    for key, entry in red.sample(time.time()).stats.items():
        if key.pid == pid and key.method != UNPARSED_METHOD:
            before = prev.stats.get(key)
            n = entry.count - (before.count if before and before.count <= entry.count else 0)
            if n:
                got[(key.method, key.path)] += n
    return got


def recorded(red, pid: int, prev, expected_total: int) -> Counter:
    """since(), once the expected number arrived (or 5 s passed) and a moment more."""
    deadline = time.time() + 5
    while sum(since(red, pid, prev).values()) < expected_total and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # nothing more must arrive
    return since(red, pid, prev)


methods = st.sampled_from(
    [m.encode() for m in METHODS[1:]] + [b"get", b"GETX", b"G", b"CONNECT", b"", b"PRI"]
)
paths = st.one_of(
    st.binary(max_size=140),
    st.text(alphabet="/abc?#%é\x00 .*", max_size=120).map(lambda t: t.encode()),
    st.sampled_from([b"/", b"/users/42", b"/a?token=secret", b"*", b"http://h/x"]),
    # long clean paths: around the probe's PATH_LEN, where it cuts and marks truncation
    st.text(alphabet="/abcxyz019-_.", min_size=85, max_size=110).map(lambda t: b"/" + t.encode()),
)
request_lines = st.one_of(
    st.tuples(
        methods,
        st.sampled_from([b" ", b"", b"  ", b"\t"]),
        paths,
        st.sampled_from([b" HTTP/1.1", b" HTTP/1.0", b"", b" HTTP/9.9", b" junk"]),
        st.sampled_from([b"\r\nHost: x\r\n\r\n", b"\r\n\r\n", b"\r\n", b"", b"\n\n"]),
    ).map(b"".join),
    st.binary(min_size=1, max_size=300),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(request_lines, min_size=1, max_size=12))
def test_the_probe_records_what_its_parser_says(red, targets, batch):
    for srv in targets:
        prev = red.sample(time.time())
        for data in batch:
            send_raw(srv.port, data)
        expected = Counter(v for v in map(probe_view, batch) if v is not None)
        got = recorded(red, srv.pid, prev, sum(expected.values()))
        assert got == expected, (srv, batch)


# ---- malformed traffic beside good requests --------------------------------------------------


def slowloris(port: int, stop: threading.Event) -> None:
    """Request heads that never finish: one byte a tenth of a second, connection held."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        while not stop.wait(0.1):
            with contextlib.suppress(OSError):
                s.sendall(b"X")


def bad_traffic(port: int, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        kind = i % 5
        if kind == 0:
            send_raw(port, bytes((i * 37 + j * 11) % 256 for j in range(200)))  # garbage
        elif kind == 1:
            send_raw(port, b"GET /trunc")  # a request line cut short
        elif kind == 2:
            send_raw(port, b"GET /" + b"h" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")  # huge path
        elif kind == 3:  # pipelined: two requests in one send
            send_raw(port, b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n")
        else:
            send_raw(port, b"POST /half HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")  # body cut short
        i += 1


@pytest.mark.parametrize("which", [0, 1], ids=["nginx", "python"])
def test_malformed_traffic_does_not_disturb_good_counts(red, targets, which):
    srv = targets[which]
    stop = threading.Event()
    noise = [threading.Thread(target=slowloris, args=(srv.port, stop)) for _ in range(5)]
    noise += [threading.Thread(target=bad_traffic, args=(srv.port, stop)) for _ in range(2)]
    w = Window(red, srv.pid)
    for t in noise:
        t.start()
    try:
        n = 300
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        statuses = Counter()
        for i in range(n):
            conn.request("GET", f"/good/{i % 5}?q={i}")
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
        conn.close()
    finally:
        stop.set()
        for t in noise:
            t.join(10)
    deadline = time.time() + 5
    while True:
        cur = red.sample(time.time())
        good = Counter()
        for key, entry in cur.stats.items():
            if key.pid == srv.pid and key.path.startswith("/good/"):
                before = w.prev.stats.get(key)
                good[key.status] += entry.count - (before.count if before else 0)
        if sum(good.values()) >= n or time.time() > deadline:
            break
        time.sleep(0.05)
    assert good == statuses
    section = red_section(w.prev, cur, time.time() - w.t0)
    svc = next(s for s in section.services if s.pid == srv.pid)
    assert svc.requests >= n  # the bad traffic's own answers (400, 414...) on top
    assert not any("q=" in r.route or "h" * 200 in r.route for r in svc.routes_total)


# ---- hostile names: a process's name is chosen by whoever runs it ------------------------------

HOSTILE = b"\x1b]2;PWNED\x07\x1b[2J"  # set the window title, clear the screen
NAMED_SERVER = (
    "import ctypes, runpy, sys\n"
    f"ctypes.CDLL(None).prctl(15, {HOSTILE!r}, 0, 0, 0)\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def test_escape_sequences_in_process_names_never_reach_the_terminal(red, tmp_path):
    """A server whose process name holds escape sequences answers requests while the real
    console runs in tmux: the name is shown with U+FFFD for the controls, the terminal's title
    is not changed, and the procs and RED sources hand out printable text only."""
    from bench import ui_cost
    from obs_tui.sources.procs import ProcsSource

    port = servers.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", NAMED_SERVER, str(servers.HERE / "py_server.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid = None
    try:
        servers.wait_port(port, proc)
        w = Window(red, proc.pid)
        pid = ui_cost.start_pane(
            "hostile",
            [sys.executable, "-m", "obs_tui", "--interval", "0.5"],
            {"TERM": "tmux-256color", "PYTHONPATH": str(REPO)},
            120,
            40,
        )
        ui_cost.tmux("select-pane", "-t", "hostile", "-T", "before")
        deadline = time.monotonic() + 20
        zoomed = False
        while time.monotonic() < deadline:
            keepalive_get(port, 20)
            screen = ui_cost.capture("hostile")
            if "PWNED" in screen:
                break
            if not zoomed and "Requests" in screen:
                # the Requests pane alone: the server's row is shown whatever else the host runs
                ui_cost.tmux("send-keys", "-t", "hostile", "2")
                zoomed = True
            time.sleep(0.2)
        screen = ui_cost.capture("hostile")
        assert "\ufffd]2;PWNED" in screen, screen  # shown, defanged
        assert ui_cost.tmux("display-message", "-p", "-t", "hostile", "#{pane_title}").strip() == "before"
        comm = ProcsSource().sample(time.time())[proc.pid].info.comm
        _, svc = w.result(1)
        assert comm.isprintable() and svc.comm.isprintable() and "PWNED" in svc.comm
    finally:
        if pid is not None:
            ui_cost.kill_session("hostile", [pid])
            ui_cost.tmux_kill_server()
        servers.stop(proc)


def keepalive_get(port: int, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(n):
        conn.request("GET", "/x")
        conn.getresponse().read()
    conn.close()
