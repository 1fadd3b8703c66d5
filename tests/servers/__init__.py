"""Real HTTP servers for the RED tests: nginx, Python's threading http.server and Node's
http module, each on a free 127.0.0.1 port in its own temp dir, started and stopped by a
context manager that yields the pid that serves requests."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Server:
    pid: int  # the process that reads requests and writes responses
    port: int
    tls_port: int | None = None
    h2c_port: int | None = None  # nginx with http2: HTTP/2 in the clear (prior knowledge)
    h2_tls_port: int | None = None  # nginx with http2 and tls: h2 over TLS (ALPN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.args}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


# openssl req's arguments for a new P-256 key, unencrypted
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def self_signed_cert(directory: Path, name: str = "cert", *extensions: str) -> tuple[Path, Path]:
    """A self-signed EC certificate for 127.0.0.1 (with the IP SAN that urllib3 2 requires),
    CN `name`, and its key: directory/NAME.crt and NAME.key. `extensions`: more -addext
    values (a CA's basicConstraints and keyUsage)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    more = [arg for extension in extensions for arg in ("-addext", extension)]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            *EC_KEY,
            "-subj",
            f"/CN={name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            *more,
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def _running(args: list[str], port: int, cwd: Path, env: dict[str, str] | None = None):
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
    )
    try:
        wait_port(port, proc)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


NGINX_CONF = """
user root;
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        {tls}
        root {dir}/www;
        location / {{ }}
        location /fail {{ return 500; }}
        location /drop {{ return 444; }}
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""


def _nginx_worker(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """The worker's pid: the master listens before it forks its worker, so a connection that
    succeeds says nothing about the worker yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = psutil.Process(proc.pid).children()
        if workers:
            return workers[0].pid
        time.sleep(0.01)
    raise TimeoutError(f"nginx {proc.pid} forked no worker in {timeout} s")


@contextlib.contextmanager
def nginx(tmp: Path, tls: bool = False, http2: bool = False):
    """nginx with a static index (200), any other path (404), /fail (500), /drop (closes
    the connection without a response) and /nginx_status (stub_status: nginx's own request
    count); with tls, also HTTPS on a second port; with http2, HTTP/2 in the clear on a third
    port (and with tls too, h2 over TLS on a fourth)."""
    port = free_port()
    tls_port = free_port() if tls else None
    h2c_port = free_port() if http2 else None
    h2_tls_port = free_port() if http2 and tls else None
    tls_conf = ""
    if tls:
        cert, key = self_signed_cert(tmp)
        tls_conf = f"listen 127.0.0.1:{tls_port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};"
    if http2:
        tls_conf += f"listen 127.0.0.1:{h2c_port} http2;"
        if tls:
            tls_conf += f"listen 127.0.0.1:{h2_tls_port} ssl http2;"
    (tmp / "www").mkdir(exist_ok=True)
    (tmp / "www" / "index.html").write_text("hello\n")
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp, port=port, tls=tls_conf))
    with _running(["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)], port, tmp) as proc:
        for extra in (tls_port, h2c_port, h2_tls_port):
            if extra:
                wait_port(extra, proc)
        yield Server(_nginx_worker(proc), port, tls_port, h2c_port, h2_tls_port)


@contextlib.contextmanager
def python_server(
    tmp: Path, tls: bool = False, name: str = "", service: str = "", forking: bool = False, prefork: int = 0
):
    """name: the process's comm, to tell it from other python3s; service: its
    OTEL_SERVICE_NAME (the service name obs-tui shows and exports; else comm:port).
    forking: a child process per connection (ForkingMixIn); prefork: that many worker processes
    accepting on the inherited socket. Either way the pid yielded is the parent's."""
    port = free_port()
    args = [sys.executable, str(HERE / "py_server.py"), str(port)]
    if tls:
        args += [str(p) for p in self_signed_cert(tmp)]
    env = {**({"OBS_TEST_COMM": name} if name else {}), **({"OTEL_SERVICE_NAME": service} if service else {})}
    if forking:
        env["OBS_TEST_FORKING"] = "1"
    if prefork:
        env["OBS_TEST_PREFORK"] = str(prefork)
    with _running(args, port, tmp, env or None) as proc:
        yield Server(proc.pid, port, port if tls else None)


@contextlib.contextmanager
def node_server(tmp: Path, tls: bool = False):
    """Node's http module; with tls its https module, whose TLS is Node's own bundled OpenSSL
    (no libssl.so in its maps), which obs-tui does not decrypt."""
    port = free_port()
    args = ["node", str(HERE / "node_server.js"), str(port)]
    if tls:
        args += [str(p) for p in self_signed_cert(tmp)]
    with _running(args, port, tmp) as proc:
        yield Server(proc.pid, port, port if tls else None)


@contextlib.contextmanager
def node_h2_server(tmp: Path):
    """Node's http2 module over TLS (h2 only, Node's own bundled OpenSSL)."""
    port = free_port()
    cert, key = self_signed_cert(tmp)
    with _running(
        ["node", str(HERE / "node_h2_server.js"), str(port), str(cert), str(key)], port, tmp
    ) as proc:
        yield Server(proc.pid, port, port)


def build_go_server(directory: Path, stripped: bool = False) -> Path:
    """go_server.go built with Debian's golang-go into directory (the build cache and GOPATH
    there too, no network: only the standard library); stripped: without symbols or DWARF
    (-ldflags=-s -w), as release builds often are."""
    out = directory / ("go_server_stripped" if stripped else "go_server")
    env = {
        **os.environ,
        "GOCACHE": str(directory / "gocache"),
        "GOPATH": str(directory / "gopath"),
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GO111MODULE": "off",
        "CGO_ENABLED": "0",
    }
    args = ["go", "build", "-o", str(out)]
    if stripped:
        args += ["-ldflags=-s -w"]
    subprocess.run([*args, str(HERE / "go_server.go")], check=True, capture_output=True, env=env, timeout=300)
    return out


@contextlib.contextmanager
def go_server(tmp: Path, binary: Path):
    """A Go net/http server built by build_go_server, HTTPS through crypto/tls (HTTP/1.1, or
    h2 to clients that offer it)."""
    port = free_port()
    cert, key = self_signed_cert(tmp)
    with _running([str(binary), str(port), str(cert), str(key)], port, tmp) as proc:
        yield Server(proc.pid, port, port)


# A mix of routes, ids to normalise, 404s, slow requests and nginx's 500s.
NGINX_PATHS = ["/", "/", "/", "/index.html", "/fail", "/missing/img-{i}.png"]
PYTHON_PATHS = [
    "/users/{i}",
    "/users/{i}",
    "/orders/{i}/items",
    "/sleep/20",
    "/status/503",
    "/status/404",
    "/health",
]


def _client(port: int, paths: list[str], stop: threading.Event) -> None:
    """Keep-alive GETs round the paths until stopped (reconnects when the server closes)."""
    i = 0
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            while not stop.is_set():
                conn.request("GET", paths[i % len(paths)].format(i=1000 + i % 37))
                conn.getresponse().read()
                i += 1
                stop.wait(0.004)
        except (OSError, http.client.HTTPException):
            stop.wait(0.05)
        finally:
            conn.close()


@contextlib.contextmanager
def traffic():
    """An nginx and a Python server, each answering a keep-alive client (~250 req/s in all),
    for as long as the context lasts: what `make screenshots` and `bench/ui_cost.py --traffic`
    show the probes."""
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "nginx", Path(tmp) / "py"
        a.mkdir()
        b.mkdir()
        with nginx(a) as web, python_server(b) as api:
            threads = [
                threading.Thread(target=_client, args=(web.port, NGINX_PATHS, stop), daemon=True),
                threading.Thread(target=_client, args=(api.port, PYTHON_PATHS, stop), daemon=True),
            ]
            for t in threads:
                t.start()
            try:
                yield
            finally:
                stop.set()
                for t in threads:
                    t.join(5)


def obs_tui_command(*args: str) -> list[str]:
    """The argv of obs-tui as this test run installed it: `python -m obs_tui ARGS`."""
    return [sys.executable, "-m", "obs_tui", *args]


def run_obs_tui(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """obs-tui ARGS run to its end, its output captured as text."""
    return subprocess.run(obs_tui_command(*args), capture_output=True, text=True, timeout=timeout)


def agent_command(config: Path, port: int, interval: float, *extra: str) -> list[str]:
    """The argv of a real `obs-tui agent` on 127.0.0.1:port (tests and benches start it so)."""
    return obs_tui_command(
        "--config",
        str(config),
        "agent",
        "--listen",
        f"127.0.0.1:{port}",
        "--interval",
        f"{interval:g}",
        *extra,
    )


@contextlib.contextmanager
def grpc_server(tmp: Path):
    """A grpcio server (grpc_server.py: unary, server-streaming and slow methods, failing on
    request) on h2c. On SIGUSR1 it writes the calls it answered, per method and status code,
    to tmp/grpc_counts.json."""
    port = free_port()
    args = [sys.executable, str(HERE / "grpc_server.py"), str(port), str(tmp / "grpc_counts.json")]
    with _running(args, port, tmp) as proc:
        yield Server(proc.pid, port, h2c_port=port)


@contextlib.contextmanager
def h2c_upgrade_server(tmp: Path):
    """An HTTP/2 server (the `h2` library) that accepts HTTP/1.1's upgrade to h2c
    (h2c_upgrade_server.py): / 200, /fail 500, anything else 404."""
    port = free_port()
    with _running([sys.executable, str(HERE / "h2c_upgrade_server.py"), str(port)], port, tmp) as proc:
        yield Server(proc.pid, port, h2c_port=port)
