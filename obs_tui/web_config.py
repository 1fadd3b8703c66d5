"""The exporter-toolkit web config (`web-config.yml`) that node_exporter operators already have.

    tls_server_config:
      cert_file: /etc/obs-tui/tls.crt
      key_file: /etc/obs-tui/tls.key
      client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven, NoClientCert
      client_ca_file: /etc/obs-tui/clients-ca.crt
      min_version: TLS12                              # TLS12 (default) or TLS13
    http_server_config:
      headers: {X-Frame-Options: deny}
    basic_auth_users:
      prometheus: $2y$10$...                          # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\\n')

What obs-tui cannot do as the toolkit does is refused with one line, never ignored: a setting
that was meant to restrict access must not silently stop restricting it. So
`RequestClientCert` and `RequireAnyClientCert` (a client certificate asked for but never
verified: Python's ssl module cannot take one without verifying it) and `cipher_suites`,
`curve_preferences` and `client_allowed_sans` are errors; `http2` and
`prefer_server_cipher_suites` change nothing that matters here and are accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
UNVERIFIED_AUTH = ("RequestClientCert", "RequireAnyClientCert")
VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
OLD_VERSIONS = ("TLS10", "TLS11")
TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
}
REFUSED_TLS_KEYS = {"cipher_suites", "curve_preferences", "client_allowed_sans", "cert", "key"}
HTTP_KEYS = {"headers", "http2"}


class WebConfigError(Exception):
    """A web config that cannot be used: one line naming the file and the key."""


@dataclass
class WebConfig:
    context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: tuple[tuple[str, str], ...] = ()


def load(path: str) -> WebConfig:
    """Parse and check the file; WebConfigError for anything wrong (files are opened now)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"web config {path}: cannot read: {getattr(exc, 'strerror', exc)}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = exc.problem_mark if isinstance(exc, yaml.MarkedYAMLError) else None
        line = mark.line + 1 if mark is not None else "?"
        raise WebConfigError(f"web config {path}: not valid YAML (line {line})") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise WebConfigError(
            f"web config {path}: expected a mapping of tls_server_config, "
            "http_server_config and basic_auth_users"
        )
    where = f"web config {path}"
    unknown = set(doc) - {"tls_server_config", "http_server_config", "basic_auth_users"}
    if unknown:
        raise WebConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'")
    base = Path(path).resolve().parent  # relative paths are relative to the file, as in the toolkit
    config = WebConfig()
    tls = _mapping(doc.get("tls_server_config"), where, "tls_server_config")
    if tls:
        config.context = _tls_context(tls, where, base)
    http = _mapping(doc.get("http_server_config"), where, "http_server_config")
    bad = set(http) - HTTP_KEYS
    if bad:
        raise WebConfigError(f"{where}: key 'http_server_config.{sorted(bad)[0]}' is not supported")
    headers = _mapping(http.get("headers"), where, "http_server_config.headers")
    config.headers = tuple((str(k), str(v)) for k, v in headers.items())
    users = _mapping(doc.get("basic_auth_users"), where, "basic_auth_users")
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(
                f"{where}: key 'basic_auth_users.{user}' must be a bcrypt hash ($2y$...), not a password"
            )
        config.users[str(user)] = hashed.encode()
    return config


def _mapping(value: Any, where: str, key: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{where}: key '{key}' must be a mapping")
    return value


def _file(tls: dict, key: str, where: str, base: Path) -> str:
    value = tls.get(key) or ""
    if not isinstance(value, str):
        raise WebConfigError(f"{where}: key 'tls_server_config.{key}' must be a file path")
    return str(base / value) if value else ""


def _tls_context(tls: dict, where: str, base: Path) -> ssl.SSLContext:
    refused = set(tls) & REFUSED_TLS_KEYS
    if refused:
        raise WebConfigError(
            f"{where}: key 'tls_server_config.{sorted(refused)[0]}' is not "
            "supported by obs-tui (it would not restrict what it should)"
        )
    unknown = set(tls) - TLS_KEYS
    if unknown:
        raise WebConfigError(f"{where}: unknown key 'tls_server_config.{sorted(unknown)[0]}'")
    cert, key = _file(tls, "cert_file", where, base), _file(tls, "key_file", where, base)
    if not (cert and key):
        raise WebConfigError(f"{where}: tls_server_config needs both cert_file and key_file")
    ca = _file(tls, "client_ca_file", where, base)
    auth = tls.get("client_auth_type") or ("RequireAndVerifyClientCert" if ca else "NoClientCert")
    if auth in UNVERIFIED_AUTH:
        raise WebConfigError(
            f"{where}: client_auth_type {auth} (a certificate taken unverified) "
            "is not supported: use RequireAndVerifyClientCert or "
            "VerifyClientCertIfGiven with client_ca_file"
        )
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"{where}: key 'tls_server_config.client_auth_type' must be one of "
            f"{', '.join(CLIENT_AUTH)}, got {auth!r}"
        )
    if CLIENT_AUTH[auth] != ssl.CERT_NONE and not ca:
        raise WebConfigError(f"{where}: client_auth_type {auth} needs client_ca_file")
    if ca and CLIENT_AUTH[auth] == ssl.CERT_NONE:
        raise WebConfigError(
            f"{where}: client_ca_file is set but client_auth_type is "
            "NoClientCert: say which clients must present a certificate"
        )
    versions = {}
    for bound in ("min_version", "max_version"):
        name = tls.get(bound)
        if name is None:
            continue
        if name in OLD_VERSIONS:
            raise WebConfigError(f"{where}: {bound} {name}: obs-tui serves TLS 1.2 and 1.3 only")
        if name not in VERSIONS:
            raise WebConfigError(
                f"{where}: key 'tls_server_config.{bound}' must be TLS12 or TLS13, got {name!r}"
            )
        versions["minimum_version" if bound == "min_version" else "maximum_version"] = VERSIONS[name]
    try:
        context = server_context(cert, key, f"cert_file {cert} / key_file {key}")
    except WebConfigError as exc:
        raise WebConfigError(f"{where}: {exc}") from None
    for attribute, version in versions.items():
        setattr(context, attribute, version)
    context.verify_mode = CLIENT_AUTH[auth]
    if ca:
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"{where}: cannot load client_ca_file {ca}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    return context


def server_context(cert: str, key: str, what: str) -> ssl.SSLContext:
    """A TLS server context, TLS 1.2 at least, with this certificate and key; WebConfigError
    ("cannot load <what>: why") when they do not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"cannot load {what}: {getattr(exc, 'strerror', None) or exc}") from None
    return context


class BcryptUsers:
    """Checks HTTP basic auth against bcrypt hashes. A bcrypt check costs tens of
    milliseconds by design; a right answer is remembered (as a keyed digest, never the
    password) so a scrape every few seconds does not pay it each time."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._key = hashlib.sha256(repr(sorted(users.items())).encode()).digest()
        self._good: set[bytes] = set()
        self._lock = threading.Lock()
        # Checked for unknown users, so a wrong user name costs the time a wrong password does
        # (no user enumeration by timing); the cost of the users' own hashes.
        cost = max(
            (
                int(h.split(b"$")[2])
                for h in users.values()
                if h.count(b"$") >= 3 and h.split(b"$")[2].isdigit()
            ),
            default=10,
        )
        import bcrypt

        self._dummy = bcrypt.hashpw(b"no one's password", bcrypt.gensalt(min(max(cost, 4), 31)))

    def check(self, header: str) -> bool:
        import bcrypt

        if not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if not sep:
            return False
        digest = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if digest in self._good:
                return True
        hashed = self.users.get(user)
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or self._dummy) and hashed is not None
        except ValueError:  # a malformed hash: no one gets in with it
            ok = False
        if ok:
            with self._lock:
                if len(self._good) > 1024:
                    self._good.clear()
                self._good.add(digest)
        return ok


def guard(app: Callable, config: WebConfig) -> Callable:
    """The WSGI app behind basic auth (when users are configured) with the extra headers."""
    users = BcryptUsers(config.users) if config.users else None
    extra = list(config.headers)

    def guarded(environ: dict, start_response: Callable) -> Any:
        def start(status: str, headers: list, *rest: Any) -> Any:
            return start_response(status, headers + extra, *rest)

        if users is not None and not users.check(environ.get("HTTP_AUTHORIZATION", "")):
            start(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="obs-tui"'), ("Content-Type", "text/plain")],
            )
            return [b"unauthorized\n"]
        return app(environ, start)

    return guarded
