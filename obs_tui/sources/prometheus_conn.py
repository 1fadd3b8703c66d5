"""One way to reach the configured Prometheus: URL, auth, CA and timeout from [prometheus]."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PrometheusConfigError(Exception):
    pass


def _read_secret(path: str, key: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise PrometheusConfigError(f"prometheus.{key} {path}: {exc.strerror}") from None


@dataclass
class Endpoint:
    url: str
    session: Any  # requests.Session, carrying the CA bundle
    headers: dict[str, str]
    auth: tuple[str, str] | None
    timeout_s: float

    @classmethod
    def from_config(cls, prom: dict[str, Any]) -> "Endpoint":
        import requests

        session = requests.Session()
        if prom.get("ca_file"):
            session.verify = prom["ca_file"]
        headers: dict[str, str] = {}
        auth = None
        if prom.get("bearer_token_file"):
            headers["Authorization"] = "Bearer " + _read_secret(prom["bearer_token_file"], "bearer_token_file")
        elif prom.get("basic_auth_user"):
            password = ""
            if prom.get("basic_auth_password_file"):
                password = _read_secret(prom["basic_auth_password_file"], "basic_auth_password_file")
            auth = (prom["basic_auth_user"], password)
        return cls(prom["url"].rstrip("/"), session, headers, auth, float(prom.get("timeout_s", 5)))

    def api(self):
        """A prometheus-api-client connection sharing this endpoint's session and auth."""
        from prometheus_api_client import PrometheusConnect

        return PrometheusConnect(url=self.url, headers=self.headers or None, auth=self.auth,
                                 session=self.session, timeout=self.timeout_s)

    def version(self) -> str:
        """The server's version from /api/v1/status/buildinfo; raises on any failure."""
        response = self.session.get(f"{self.url}/api/v1/status/buildinfo", headers=self.headers,
                                    auth=self.auth, timeout=self.timeout_s)
        response.raise_for_status()
        return response.json()["data"]["version"]
