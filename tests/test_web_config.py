"""The exporter-toolkit web-config.yml: real TLS with openssl-made certificates, client
certificates verified against a CA, bcrypt users (right and wrong passwords), and bad files
as one-line errors."""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from obs_tui.exporter import ExporterError, FrameCollector, serve
from obs_tui.web_config import WebConfigError, load
from tests import fake_frames, servers


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    return servers.self_signed_cert(
        directory, name, "basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign"
    )


def _signed(directory: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    cert, key, csr, extfile = (
        directory / f"{name}.crt",
        directory / f"{name}.key",
        directory / f"{name}.csr",
        directory / f"{name}.ext",
    )
    _openssl(
        "req",
        *servers.EC_KEY,
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    extfile.write_text(ext)
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca[0]),
        "-CAkey",
        str(ca[1]),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(extfile),
        "-out",
        str(cert),
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, other_ca = _ca(d, "ca"), _ca(d, "other-ca")
    return {
        "ca": ca,
        "dir": d,
        "server": _signed(d, "server", ca, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        "client": _signed(d, "client", ca, "extendedKeyUsage=clientAuth\n"),
        "stranger": _signed(d, "stranger", other_ca, "extendedKeyUsage=clientAuth\n"),
    }


@pytest.fixture
def collector():
    c = FrameCollector()
    c.publish(fake_frames.full_frame(0))
    return c


HASH = bcrypt.hashpw(b"s3cret pass", bcrypt.gensalt(8)).decode().replace("$2b$", "$2y$", 1)


def _write(tmp: Path, text: str) -> str:
    path = tmp / "web-config.yml"
    path.write_text(text)
    return str(path)


def _context(pki, client: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"][0]))
    if client:
        context.load_cert_chain(*(str(p) for p in pki[client]))
    return context


def _get(url: str, context=None, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            assert b"obs_build_info" in response.read()
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _refused(url: str, context) -> None:
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _get(url, context)


def _tls(tmp: Path, pki, *more: str) -> str:
    """A web config with the server's certificate and `more` lines under tls_server_config
    (indented) or, when they start unindented, after it."""
    server_cert, server_key = pki["server"]
    return _write(
        tmp,
        "\n".join(["tls_server_config:", f"  cert_file: {server_cert}", f"  key_file: {server_key}", *more])
        + "\n",
    )


def test_client_certificates_are_required_and_verified(tmp_path, pki, collector):
    path = _tls(
        tmp_path, pki, f"  client_ca_file: {pki['ca'][0]}", "  client_auth_type: RequireAndVerifyClientCert"
    )
    server = serve(collector, f"127.0.0.1:{servers.free_port()}", web_config_file=path)
    try:
        assert server.url.startswith("https://")
        assert _get(server.url, _context(pki, "client")) == 200
        _refused(server.url, _context(pki))  # no certificate
        _refused(server.url, _context(pki, "stranger"))  # signed by a CA it does not trust
        _refused(server.url.replace("https://", "http://"), None)
    finally:
        server.close()


def test_verify_if_given_and_relative_paths(tmp_path, pki, collector):
    for name in ("server.crt", "server.key", "ca.crt"):
        (tmp_path / name).write_bytes((pki["dir"] / name).read_bytes())
    path = _write(
        tmp_path,
        """
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_ca_file: ca.crt
  client_auth_type: VerifyClientCertIfGiven
  min_version: TLS13
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
""",
    )
    server = serve(collector, f"127.0.0.1:{servers.free_port()}", web_config_file=path)
    try:
        assert _get(server.url, _context(pki)) == 200
        assert _get(server.url, _context(pki, "client")) == 200
        _refused(server.url, _context(pki, "stranger"))
        old = _context(pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        _refused(server.url, old)
        with urllib.request.urlopen(server.url, timeout=5, context=_context(pki)) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        server.close()


def test_bcrypt_users_right_and_wrong(tmp_path, pki, collector):
    path = _tls(tmp_path, pki, "basic_auth_users:", f"  prometheus: {HASH}")
    server = serve(collector, f"127.0.0.1:{servers.free_port()}", web_config_file=path)
    context = _context(pki)
    try:
        for auth in (None, "prometheus:wrong", "prometheus:s3cret pas", "other:s3cret pass", "prometheus"):
            assert _get(server.url, context, auth) == 401, auth
        started = time.monotonic()
        assert _get(server.url, context, "prometheus:s3cret pass") == 200
        assert _get(server.url, context, "prometheus:s3cret pass") == 200  # remembered: no new bcrypt
        assert _get(server.url, context, "prometheus:wrong") == 401  # a right answer opens nothing else
        assert time.monotonic() - started < 5
    finally:
        server.close()


def test_basic_auth_without_tls(tmp_path, collector):
    path = _write(tmp_path, f"basic_auth_users:\n  prom: '{HASH}'\n")
    server = serve(collector, f"127.0.0.1:{servers.free_port()}", web_config_file=path)
    try:
        assert server.url.startswith("http://")
        assert _get(server.url, auth="prom:s3cret pass") == 200
        assert _get(server.url, auth="prom:nope") == 401
    finally:
        server.close()


@pytest.mark.parametrize(
    "body, needle",
    [
        ("tls_server_config:\n  cert_file: x\n", "needs both cert_file and key_file"),
        ("tls_server_config:\n  cert_file: /nope.crt\n  key_file: /nope.key\n", "cannot load cert_file"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
            "not supported",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
            "needs client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "cipher_suites' is not supported",
        ),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n", "TLS 1.2 and 1.3 only"),
        ("basic_auth_users:\n  prom: plain-password\n", "must be a bcrypt hash"),
        ("basic_auth_user:\n  prom: x\n", "unknown key 'basic_auth_user'"),
        ("tls_server_config: [\n", "not valid YAML"),
    ],
)
def test_bad_web_configs_are_one_line(tmp_path, body, needle):
    with pytest.raises(WebConfigError, match=needle) as err:
        load(_write(tmp_path, body))
    assert "\n" not in str(err.value)


def test_web_config_and_the_old_keys_do_not_mix(tmp_path, collector):
    path = _write(tmp_path, "")
    with pytest.raises(ExporterError, match="not both"):
        serve(
            collector, "127.0.0.1:0", basic_auth_user="u", basic_auth_password_file="p", web_config_file=path
        )


def test_agent_with_a_bad_web_config_exits_2(tmp_path):
    from tests.test_cli import assert_one_line_error, run_cli

    missing = str(tmp_path / "missing.yml")
    assert_one_line_error(
        run_cli("agent", "--listen", "127.0.0.1:0", "--web.config.file", missing),
        "web config",
        "missing.yml",
        "cannot read",
    )
    conf = tmp_path / "c.toml"
    conf.write_text(f'[exporter]\nweb_config_file = "{_write(tmp_path, "basic_auth_users: 3")}"\n')
    assert_one_line_error(
        run_cli("--config", str(conf), "agent", "--listen", "127.0.0.1:0"), "basic_auth_users", "mapping"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="the agent's eBPF probes need root")
def test_the_agent_serves_through_its_web_config(tmp_path, pki):
    path = _tls(
        tmp_path, pki, f"  client_ca_file: {pki['ca'][0]}", "basic_auth_users:", f"  prometheus: {HASH}"
    )
    port = servers.free_port()
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "obs_tui",
            "agent",
            "--listen",
            f"127.0.0.1:{port}",
            "--web-config-file",
            path,
            "--interval",
            "0.5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        servers.wait_port(port, agent, timeout=30)
        url = f"https://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while _get(url, _context(pki, "client"), "prometheus:s3cret pass") != 200:
            assert time.monotonic() < deadline  # 503 until the first frame
            time.sleep(0.5)
        assert _get(url, _context(pki, "client"), "prometheus:bad") == 401
        _refused(url, _context(pki))
    finally:
        servers.stop(agent)
