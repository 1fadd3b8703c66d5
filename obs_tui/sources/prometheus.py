"""The one way to talk to Prometheus: a client on prometheus-api-client, and a polling worker.

Client (all calls bounded by `timeout_s`, no retries, every failure a PrometheusError whose
one-line message never contains a secret, and every answer checked for the shape Prometheus
gives before a reader sees it):

    client = Client.from_config(config.prometheus)    # PrometheusConfigError on bad settings
    slo = client.reader("slo")           # the same client, its requests reported as the SLO's
    client.health.capability()           # ok / degraded / off over every reader (service_health)
    client.query(promql, at=None)        -> list of {"metric": {...}, "value": [t, "v"]}
    client.query_range(promql, start, end, step_s) -> list of {"metric": {...}, "values": [...]}
    client.series(matchers, start, end)  -> list of label dicts
    client.labels(matchers=None)         -> list of label names
    client.label_values(name, matchers=None) -> list of values
    client.metadata(metric=None)         -> {metric: [{"type", "help", "unit"}]}
    client.buildinfo()                   -> {"version": ..., ...}
    client.ready()                       -> GET /-/ready (the heartbeat's request)
    client.start_heartbeat(interval_s)   # /-/ready every interval_s into the health (Engine)
    client.requests                      -> HTTP requests sent so far, by every reader

Settings come from the [prometheus] table: url, timeout_s, bearer_token_file, or
basic_auth_user + basic_auth_password_file, ca_file, cert_file + key_file. Secrets are read
from those files or from the environment ($OBS_TUI_PROMETHEUS_BEARER_TOKEN,
$OBS_TUI_PROMETHEUS_PASSWORD), never from the command line: a URL carrying user:password is
refused.

Poller (a daemon thread that calls `fetch(client)` every `interval_s`, backing off
exponentially after failures, so a source's `sample(now)` only reads `poller.state()`):

    poller = Poller(client, fetch, interval_s=15.0)   # starts at once
    state = poller.state()   # PollState: value, fetched_at, error, error_at, failures, attempts
    state.age(now)           # seconds since the last good fetch, None before the first
    poller.refresh()         # fetch now (e.g. the SLO list changed)
    poller.wait_first(timeout_s)  # for `snapshot`: block until the first attempt finished
    poller.close()
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from obs_tui.sources.service_health import HEARTBEAT, ServiceHealth

TOKEN_ENV = "OBS_TUI_PROMETHEUS_BEARER_TOKEN"
PASSWORD_ENV = "OBS_TUI_PROMETHEUS_PASSWORD"
REDACTED = "<redacted>"


class PrometheusConfigError(Exception):
    """The [prometheus] settings cannot work (a secret file is missing, a URL carries a password)."""


class PrometheusError(Exception):
    """A call failed; the message is one redacted line fit for a pane."""


class _Malformed(Exception):
    """An answer that is not what Prometheus gives for this call."""


# HTTP codes with which Prometheus answers a query it rejects (bad PromQL, a query that fails
# to run): the service is up, the query is the reader's own problem.
REJECTED = ("400", "422")


def _read_secret(path: str, key: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise PrometheusConfigError(f"prometheus.{key} {path}: {exc.strerror}") from None


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Client:
    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        token: str = "",
        basic_auth: tuple[str, str] | None = None,
        ca_file: str = "",
        cert: tuple[str, str] | str | None = None,
        health: ServiceHealth | None = None,
    ) -> None:
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        from obs_tui.config import url_problem

        if url_problem(url):
            raise PrometheusConfigError(f"prometheus.url {url_problem(url)}")
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        # Prometheus stops evaluating after this too (its durations take whole units).
        self._server_timeout = f"{max(int(self.timeout_s * 1000), 1)}ms"
        import base64

        self._secrets = [s for s in (token, basic_auth[1] if basic_auth else "") if s]
        if basic_auth:  # the header form, should a server echo it back
            self._secrets.insert(0, base64.b64encode(":".join(basic_auth).encode()).decode())
        session = requests.Session()
        if ca_file:
            session.verify = ca_file
        if cert:
            session.cert = cert
        headers = {"Authorization": f"Bearer {token}"} if token else None
        # No retries: the library's default (3 retries with backoff on 5xx) would hold a call
        # for many times the timeout; the Poller does its own backoff between rounds.
        self._api = PrometheusConnect(
            url=self.url,
            headers=headers,
            auth=basic_auth,
            session=session,
            timeout=self.timeout_s,
            retry=Retry(total=0, raise_on_status=False),
        )
        self._session = session
        self._headers = headers
        self._auth = basic_auth
        # One health for every reader of this client (reader() shares it): the `prometheus`
        # capability that every surface shows.
        self.health = health or ServiceHealth()
        self.reader_name = "client"
        self._heartbeat: Poller[str] | None = None

    def reader(self, name: str) -> Client:
        """This client (session, auth, health) for one reader: its requests report as `name`."""
        view = copy.copy(self)
        view.reader_name = name
        view._heartbeat = None  # the client's own: a view's close() leaves it beating
        return view

    @property
    def requests(self) -> int:
        return self.health.requests

    @classmethod
    def from_config(cls, prom: dict[str, Any]) -> Client:
        if not prom.get("url"):
            raise PrometheusConfigError("prometheus.url is not set (--prometheus URL)")
        token = os.environ.get(TOKEN_ENV, "")
        if prom.get("bearer_token_file"):
            token = _read_secret(prom["bearer_token_file"], "bearer_token_file")
        basic = None
        if prom.get("basic_auth_user"):
            password = os.environ.get(PASSWORD_ENV, "")
            if prom.get("basic_auth_password_file"):
                password = _read_secret(prom["basic_auth_password_file"], "basic_auth_password_file")
            basic = (prom["basic_auth_user"], password)
        if token and basic:
            raise PrometheusConfigError("prometheus: give a bearer token or basic auth, not both")
        cert: tuple[str, str] | str | None = None
        if prom.get("key_file") and not prom.get("cert_file"):
            raise PrometheusConfigError("prometheus.key_file needs prometheus.cert_file")
        if prom.get("cert_file"):
            cert = (prom["cert_file"], prom["key_file"]) if prom.get("key_file") else prom["cert_file"]
        for key in ("ca_file", "cert_file", "key_file"):
            if prom.get(key) and not Path(prom[key]).is_file():
                raise PrometheusConfigError(f"prometheus.{key} {prom[key]}: no such file")
        return cls(prom["url"], float(prom.get("timeout_s", 5)), token, basic, prom.get("ca_file", ""), cert)

    # ---- errors ---------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _call(self, what: str, fn: Callable[[], Any], shape: Callable[[Any], Any]) -> Any:
        """Run one request; report its outcome to the health; return the checked answer."""
        import requests
        from prometheus_api_client import PrometheusApiClientException

        self.health.sent()
        answered = False  # the service answered, even if it rejected the query
        try:
            result = fn()
            if result is None:
                raise _Malformed("no data")
            shape(result)
        except requests.exceptions.Timeout:
            reason = f"no answer within {self.timeout_s:g}s"
        except requests.exceptions.SSLError as exc:
            reason = f"TLS error: {_root_cause(exc)}"
        except requests.exceptions.ConnectionError as exc:
            # With retries off, urllib3 wraps a read timeout in MaxRetryError: still a timeout.
            cause = _root_cause(exc)
            reason = (
                f"no answer within {self.timeout_s:g}s"
                if "timed out" in cause
                else f"cannot connect: {cause}"
            )
        except PrometheusApiClientException as exc:
            reason = _http_reason(str(exc))
            answered = reason.split(":", 1)[0].removeprefix("HTTP ") in REJECTED
        except _Malformed as exc:
            reason = f"malformed answer ({exc})"
        except (ValueError, LookupError, TypeError, AttributeError):
            # the library's own parsing met JSON that is not Prometheus's (or no JSON at all)
            reason = "malformed answer (not Prometheus's JSON)"
        except requests.exceptions.RequestException as exc:
            reason = f"request failed: {_root_cause(exc)}"
        else:
            self.health.succeeded(self.reader_name)
            return result
        reason = self.redact(_one_line(reason))
        if answered:
            self.health.succeeded(self.reader_name)
        else:
            self.health.failed(self.reader_name, reason)
        raise PrometheusError(self.redact(_one_line(f"{what} {self.url}: {reason}"))) from None

    # ---- the API --------------------------------------------------------------------------

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        params = {"timeout": self._server_timeout}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._call("query", lambda: self._api.custom_query(promql, params=params), _vector)

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[dict]:
        return self._call(
            "query_range",
            lambda: self._api.custom_query_range(
                promql, _dt(start), _dt(end), f"{step_s:g}s", params={"timeout": self._server_timeout}
            ),
            _matrix,
        )

    def series(self, matchers: list[str], start: float, end: float) -> list[dict]:
        return self._call(
            "series",
            lambda: self._api.get_series(_dt(start), _dt(end), params={"match[]": list(matchers)}),
            _label_sets,
        )

    def labels(self, matchers: list[str] | None = None) -> list[str]:
        params = {"match[]": list(matchers)} if matchers else None
        return self._call("labels", lambda: self._api.get_label_names(params=params), _strings)

    def label_values(self, name: str, matchers: list[str] | None = None) -> list[str]:
        params = {"match[]": list(matchers)} if matchers else None
        return self._call("label values", lambda: self._api.get_label_values(name, params=params), _strings)

    def metadata(self, metric: str | None = None) -> dict[str, list[dict]]:
        def fetch() -> dict[str, list[dict]]:
            out: dict[str, list[dict]] = {}
            for row in self._api.get_metric_metadata(metric):
                out.setdefault(row["metric_name"], []).append({k: row[k] for k in ("type", "help", "unit")})
            return out

        return self._call("metadata", fetch, lambda answer: None)

    def buildinfo(self) -> dict[str, Any]:
        # prometheus-api-client has no call for it; same session, auth, CA and timeout.
        def fetch() -> dict[str, Any]:
            from prometheus_api_client import PrometheusApiClientException

            response = self._session.get(
                f"{self.url}/api/v1/status/buildinfo",
                headers=self._headers,
                auth=self._auth,
                timeout=self.timeout_s,
            )
            if response.status_code != 200:
                raise PrometheusApiClientException(
                    f"HTTP Status Code {response.status_code} ({response.content!r})"
                )
            return response.json()["data"]

        def shape(data: Any) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("version"), str):
                raise _Malformed("no version")

        return self._call("buildinfo", fetch, shape)

    def ready(self) -> str:
        """Prometheus's own readiness (`GET /-/ready`): the heartbeat's one cheap request."""

        def fetch() -> str:
            from prometheus_api_client import PrometheusApiClientException

            response = self._session.get(
                f"{self.url}/-/ready", headers=self._headers, auth=self._auth, timeout=self.timeout_s
            )
            if response.status_code == 404:
                return ""  # a server without the endpoint answered all the same
            if response.status_code != 200:
                raise PrometheusApiClientException(
                    f"HTTP Status Code {response.status_code} ({response.content!r})"
                )
            # Readiness is said in plain text; a page or JSON is something else answering.
            if not response.headers.get("Content-Type", "").startswith("text/plain"):
                raise _Malformed("not a readiness answer")
            return response.text

        return self._call("ready", fetch, lambda answer: None)

    def start_heartbeat(self, interval_s: float) -> None:
        """Ask `/-/ready` every `interval_s` (once per client; close() stops it), reporting as
        the reader HEARTBEAT: a fault reaches the health within timeout_s and one interval,
        however seldom the readers poll."""
        if self._heartbeat is None:
            self._heartbeat = Poller(
                self.reader(HEARTBEAT),
                lambda client: client.ready(),
                interval_s=interval_s,
                # a beat, not a reader: no backoff, or a recovery would be seen late
                backoff_min_s=interval_s,
                backoff_max_s=interval_s,
            )

    def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.close()
        self._session.close()


# ---- the shapes of Prometheus's answers (what the readers index into) -----------------------


def _labels(item: Any) -> None:
    if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
        raise _Malformed("unexpected JSON")


def _point(point: Any) -> None:
    if not isinstance(point, list) or len(point) != 2 or not isinstance(point[1], str):
        raise _Malformed("unexpected JSON")


def _vector(result: Any) -> None:
    if not isinstance(result, list):
        raise _Malformed("unexpected JSON")
    if len(result) == 2 and isinstance(result[0], (int, float)) and isinstance(result[1], str):
        return  # a scalar or string result: [time, "value"]
    for row in result:
        if not isinstance(row, dict):
            raise _Malformed("unexpected JSON")
        _labels(row.get("metric"))
        _point(row.get("value"))


def _matrix(result: Any) -> None:
    if not isinstance(result, list):
        raise _Malformed("unexpected JSON")
    for row in result:
        if not isinstance(row, dict) or not isinstance(row.get("values"), list):
            raise _Malformed("unexpected JSON")
        _labels(row.get("metric"))
        for point in row["values"]:
            _point(point)


def _label_sets(result: Any) -> None:
    if not isinstance(result, list):
        raise _Malformed("unexpected JSON")
    for item in result:
        _labels(item)


def _strings(result: Any) -> None:
    if not isinstance(result, list) or not all(isinstance(v, str) for v in result):
        raise _Malformed("unexpected JSON")


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error ("Connection refused"), without URLs."""
    seen = exc
    while True:
        nxt = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen or not isinstance(nxt, BaseException):
            break
        seen = nxt
    text = str(seen)
    if "] " in text and text.startswith("<"):  # urllib3: "<conn object>: Failed ...: [Errno 111] ..."
        text = text.split(": ", 1)[-1]
    if "Errno" in text:
        text = text[text.index("Errno") :]
        text = text.split("] ", 1)[-1] if "] " in text else text
    return _one_line(text or "no reason given", 80)


def _http_reason(text: str) -> str:
    """'HTTP Status Code 400 (b'{"error":"..."}')' -> 'HTTP 400: ...' with Prometheus's own error."""
    import json
    import re

    m = re.match(r"HTTP Status Code (\d+) \((.*)\)$", text, re.S)
    if not m:
        return _one_line(text, 120)
    code, body = m.group(1), m.group(2)
    try:
        raw = body[2:-1].encode().decode("unicode_escape") if body.startswith("b") else body
        detail = json.loads(raw).get("error", "")
    except (ValueError, AttributeError):
        detail = body[2:-1] if body.startswith("b") else body
    return f"HTTP {code}" + (f": {_one_line(str(detail), 100)}" if detail else "")


# ---- the polling worker -------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class PollState(Generic[T]):
    value: T | None = None
    fetched_at: float | None = None  # epoch of the last good fetch
    error: str = ""  # the last failure, "" once a fetch succeeds again
    error_at: float | None = None
    failures: int = 0  # consecutive
    attempts: int = 0

    def age(self, now: float) -> float | None:
        return None if self.fetched_at is None else max(now - self.fetched_at, 0.0)


@dataclass
class Poller(Generic[T]):
    client: Client
    fetch: Callable[[Client], T]
    interval_s: float = 15.0
    backoff_min_s: float = 1.0
    backoff_max_s: float = 120.0
    clock: Callable[[], float] = time.time
    _state: PollState = field(default_factory=PollState, init=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _first: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        # A reader asks again as soon as the heartbeat sees Prometheus back, not after its backoff.
        self._listens = self.client.reader_name != HEARTBEAT
        if self._listens:
            self.client.health.on_recovery(self.refresh)
        self._thread = threading.Thread(target=self._run, name="prometheus-poller", daemon=True)
        self._thread.start()

    def state(self) -> PollState:
        return self._state  # replaced whole, never mutated: a plain read is consistent

    def refresh(self) -> None:
        self._wake.set()

    def wait_first(self, timeout_s: float) -> bool:
        return self._first.wait(timeout_s)

    def close(self) -> None:
        if self._listens:
            self.client.health.on_recovery(self.refresh, listen=False)
        self._stop.set()
        self._wake.set()
        # A round stuck in a request ends by itself (daemon thread, bounded by the timeout);
        # quitting the console must not wait for it.
        self._thread.join(timeout=1.0)

    def delay_after(self, failures: int) -> float:
        """Seconds to the next round: the interval, or exponential backoff after failures."""
        if failures == 0:
            return self.interval_s
        return min(self.backoff_min_s * 2 ** (failures - 1), max(self.backoff_max_s, self.interval_s))

    def _run(self) -> None:
        while not self._stop.is_set():
            state = self._state
            health, reader = self.client.health, self.client.reader_name
            health.round_started(reader)
            try:
                value = self.fetch(self.client)
            except Exception as exc:  # any failure is a reason on the pane, never a dead thread
                reason = self.client.redact(_one_line(_failure(exc)))
                if _unexpected(exc):  # the client's checks passed, yet the answer was unusable
                    health.failed(reader, reason)
                state = replace(
                    state,
                    error=reason,
                    error_at=self.clock(),
                    failures=state.failures + 1,
                    attempts=state.attempts + 1,
                )
            else:
                state = PollState(value, self.clock(), "", None, 0, state.attempts + 1)
            self._state = state
            self._first.set()
            self._wake.wait(self.delay_after(state.failures))
            self._wake.clear()


def _unexpected(exc: Exception) -> bool:
    """Not a reason a reader gave (PrometheusError from the client, SourceError: no such
    metrics): an answer it could not use."""
    from obs_tui.sources.base import SourceError

    return not isinstance(exc, (PrometheusError, SourceError))


def _failure(exc: Exception) -> str:
    """A reader's failure as one line for the pane, without Python's exception names."""
    if not _unexpected(exc):
        return str(exc)
    if isinstance(exc, (LookupError, TypeError, ValueError, AttributeError)):
        return "malformed answer (unexpected JSON)"
    return f"internal error ({type(exc).__name__}: {exc})"
