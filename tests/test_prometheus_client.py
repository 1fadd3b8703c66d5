"""The Prometheus client and its poller against a real Prometheus, through a proxy that demands
auth or a client certificate and injects faults."""

from __future__ import annotations

import re
import time

import pytest

from obs_tui.config import ConfigError, parse
from obs_tui.sources.prometheus import (
    PASSWORD_ENV,
    REDACTED,
    TOKEN_ENV,
    Client,
    Poller,
    PrometheusConfigError,
    PrometheusError,
)
from tests.fault_proxy import FaultProxy
from tests.prometheus_server import prometheus
from tests.servers import self_signed_cert

TOKEN = "s3cret-token-0123456789"
PASSWORD = "pa55-w0rd-xyz"


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    with prometheus(tmp_path_factory.mktemp("prom")) as url:
        client = Client(url, timeout_s=5)
        deadline = time.monotonic() + 20
        while not client.query('up{job="self"}') and time.monotonic() < deadline:
            time.sleep(0.2)  # the first self-scrape
        yield url


def test_every_call_against_a_real_prometheus(prom):
    client = Client.from_config({"url": prom, "timeout_s": 5})
    up = client.query('up{job="self"}')
    assert up[0]["metric"]["job"] == "self" and up[0]["value"][1] == "1"
    now = time.time()
    rows = client.query_range("vector(1)", now - 5, now, 1)
    assert [v[1] for v in rows[0]["values"]] == ["1"] * 6
    assert any(s.get("job") == "self" for s in client.series(["up"], now - 60, now))
    assert "job" in client.labels()
    assert "self" in client.label_values("job")
    assert client.metadata("prometheus_build_info")["prometheus_build_info"][0]["type"] == "gauge"
    assert client.buildinfo()["version"].count(".") == 2
    assert client.requests == 7


def test_query_at_a_time_and_prometheus_own_errors(prom):
    client = Client(prom)
    assert client.query("time()", at=1000.0) == [1000, "1000"]
    assert client.query("vector(1)", at=1000.0)[0]["value"] == [1000, "1"]
    with pytest.raises(PrometheusError, match=r"query .*: HTTP 400: .*parse error"):
        client.query("sum(")


def test_bearer_token_from_file_and_env(prom, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with FaultProxy(prom, token=TOKEN) as proxy:
        assert Client.from_config({"url": proxy.url, "bearer_token_file": str(token_file)}).query("vector(1)")
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        assert Client.from_config({"url": proxy.url}).query("vector(1)")
        monkeypatch.delenv(TOKEN_ENV)
        with pytest.raises(PrometheusError, match="HTTP 401") as err:
            Client.from_config({"url": proxy.url}).query("vector(1)")
        assert proxy.auth_failures == 1
        proxy.mode = "leak"
        with pytest.raises(PrometheusError) as err:
            Client.from_config({"url": proxy.url, "bearer_token_file": str(token_file)}).query("vector(1)")
        assert TOKEN not in str(err.value) and REDACTED in str(err.value)


def test_basic_auth_with_password_file_and_env(prom, tmp_path, monkeypatch):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    with FaultProxy(prom, basic=("obs", PASSWORD)) as proxy:
        conf = {"url": proxy.url, "basic_auth_user": "obs", "basic_auth_password_file": str(pw)}
        assert Client.from_config(conf).buildinfo()["version"]
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
        assert Client.from_config({"url": proxy.url, "basic_auth_user": "obs"}).labels()
        monkeypatch.setenv(PASSWORD_ENV, "wrong")
        with pytest.raises(PrometheusError, match="HTTP 401"):
            Client.from_config({"url": proxy.url, "basic_auth_user": "obs"}).labels()
        proxy.mode = "leak"
        with pytest.raises(PrometheusError) as err:
            Client.from_config(conf).query("vector(1)")
        message = str(err.value)
        assert PASSWORD not in message and "b2JzOnBhNTUtdzByZC14eXo=" not in message
        assert message.count(REDACTED) == 2


def test_custom_ca_and_client_certificate(prom, tmp_path):
    server_cert, server_key = self_signed_cert(tmp_path, "server")
    client_cert, client_key = self_signed_cert(tmp_path, "client")
    with FaultProxy(prom, tls=(server_cert, server_key), client_ca=client_cert) as proxy:
        conf = {
            "url": proxy.url,
            "ca_file": str(server_cert),
            "cert_file": str(client_cert),
            "key_file": str(client_key),
        }
        assert Client.from_config(conf).query("vector(1)")
        with pytest.raises(PrometheusError, match="TLS error|cannot connect"):
            Client.from_config({"url": proxy.url, "ca_file": str(server_cert)}).query("vector(1)")
        with pytest.raises(PrometheusError, match="TLS error"):
            Client.from_config({"url": proxy.url}).query("vector(1)")  # system CAs only


@pytest.mark.parametrize(
    "mode, message",
    [
        ("down", "cannot connect: Connection refused"),
        ("slow", "no answer within 0.5s"),
        ("500", "HTTP 500: injected"),
        ("malformed", "malformed answer"),
        ("blackhole", "no answer within 0.5s"),
        ("garbage", "malformed answer (not Prometheus's JSON)"),
        ("shape", "malformed answer (unexpected JSON)"),
    ],
)
def test_faults_are_one_line_reasons_within_the_timeout(prom, mode, message):
    with FaultProxy(prom, slow_s=3) as proxy:
        client = Client(proxy.url, timeout_s=0.5)
        proxy.mode = mode
        started = time.monotonic()
        with pytest.raises(PrometheusError) as err:
            client.query("vector(1)")
        assert time.monotonic() - started < 1.5  # no retries behind the timeout
        assert message in str(err.value) and "\n" not in str(err.value)
        assert str(err.value).startswith(f"query {proxy.url}: ")
        assert not re.search(r"[A-Z][a-z]+(Error|Exception)\b", str(err.value))  # no class names
        health = client.health.capability()  # the shared health saw it too, with the same words
        assert not health.ok and health.state == "off" and message in health.reason


@pytest.mark.parametrize(
    "prom_conf, message",
    [
        ({"url": "http://obs:pw@127.0.0.1:9"}, "must not carry a password"),
        ({"url": "127.0.0.1:9090"}, "must be http(s)://"),
        ({"url": "http://127.0.0.1:9", "cert_file": "", "key_file": "/k"}, "key_file needs"),
        (
            {"url": "http://127.0.0.1:9", "ca_file": "/nonexistent/ca.pem"},
            "ca_file /nonexistent/ca.pem: no such file",
        ),
        (
            {"url": "http://127.0.0.1:9", "basic_auth_user": "u", "basic_auth_password_file": "/nope"},
            "basic_auth_password_file /nope",
        ),
        ({"url": ""}, "prometheus.url is not set"),
    ],
)
def test_bad_settings_are_one_line_config_errors(prom_conf, message):
    with pytest.raises(PrometheusConfigError) as err:
        Client.from_config(prom_conf)
    assert message in str(err.value) and "pw" not in str(err.value).replace("password", "")


def test_timeouts_must_be_positive():
    with pytest.raises(ConfigError, match="prometheus.refresh_s' must be from 0.1 to 86400 seconds"):
        parse("[prometheus]\nrefresh_s = 0\n")
    assert parse('[prometheus]\ncert_file = "/c"\nkey_file = "/k"\n').prometheus["key_file"] == "/k"


def test_poller_backs_off_and_recovers(prom):
    with FaultProxy(prom) as proxy:
        client = Client(proxy.url, timeout_s=0.5)
        poller = Poller(
            client,
            lambda c: c.query("vector(42)")[0]["value"][1],
            interval_s=0.2,
            backoff_min_s=0.1,
            backoff_max_s=0.4,
        )
        try:
            assert poller.wait_first(5)
            assert poller.state().value == "42" and poller.state().error == ""
            proxy.mode = "down"
            _until(lambda: poller.state().failures >= 3)
            state = poller.state()
            assert "Connection refused" in state.error and state.value == "42"  # last good kept
            assert state.age(time.time()) > 0
            assert [poller.delay_after(n) for n in range(5)] == [0.2, 0.1, 0.2, 0.4, 0.4]
            proxy.mode = "pass"
            _until(lambda: poller.state().failures == 0)
            assert poller.state().error == "" and poller.state().age(time.time()) < 1
        finally:
            poller.close()


def test_poller_survives_a_fetch_that_raises_anything(prom):
    calls = []

    def fetch(client):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"bug with {TOKEN}")
        return len(calls)

    client = Client(prom, token=TOKEN)
    poller = Poller(client, fetch, interval_s=0.05, backoff_min_s=0.05)
    try:
        _until(lambda: poller.state().value is not None)
        assert poller.state().value >= 2
    finally:
        poller.close()
    poller2 = Poller(client, lambda c: (_ for _ in ()).throw(RuntimeError(f"x {TOKEN}")), interval_s=10)
    try:
        poller2.wait_first(5)
        assert poller2.state().error == f"internal error (RuntimeError: x {REDACTED})"
    finally:
        poller2.close()


def _until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
