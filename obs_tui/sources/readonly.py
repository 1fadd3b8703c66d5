"""Read-only mode's sources: the Requests and Power panes filled from Prometheus.

No probe, no RAPL, no root, nothing written: each source asks Prometheus through the shared
Client on a Poller thread (sources/prometheus.py), so `sample(now)` only reads the poller's
last answer and never blocks a tick. Each fetch is one PromQL query (a union of the metrics
it needs, told apart by a label set with label_replace); the power source first asks which
metric families exist (one label-values request, repeated until something is found).

Both sources see every instance of the fleet in one answer and keep the selection
(`select_instance`), so switching hosts is immediate and costs no request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from obs_tui.model import Capability
from obs_tui.raw import ALL, PowerSample, PromFetch, PromHist, PromPowerRaw, PromRedRaw
from obs_tui.sources.base import SourceError
from obs_tui.sources.prometheus import Client, Poller

HTTP = "http_server_request_duration_seconds"
HTTP_GROUP = "instance, service_name, http_request_method, http_route, http_response_status_code"
RED_QUERY = (
    f"sum by ({HTTP_GROUP}, le) ({HTTP}_bucket)"
    f' or label_replace(sum by ({HTTP_GROUP}) ({HTTP}_count), "le", "count", "", "")'
    f' or label_replace(sum by ({HTTP_GROUP}) ({HTTP}_sum), "le", "sum", "", "")'
)


@dataclass(frozen=True)
class Family:
    name: str  # shown as the power source: "obs-tui", "kepler", "scaphandre"
    marker: str  # the metric whose presence in Prometheus selects this family
    query: str


def _kind(expr: str, kind: str) -> str:
    return f'label_replace({expr}, "obs_kind", "{kind}", "", "")'


# In order of preference: our own exporter, then Kepler, then Scaphandre. obs-tui's host total
# is obs_host_power_watts without a zone label (read as zone "host"), its parts are
# obs_host_zone_power_watts; agents before that split published both under
# obs_host_power_watts{zone} with zone="host" the total, which reads the same way here.
FAMILIES = (
    Family(
        "obs-tui",
        "obs_host_power_watts",
        " or ".join(
            (
                _kind("obs_host_power_watts", "zone"),
                _kind("obs_host_zone_power_watts", "zone"),
                _kind("sum by (instance, pid, comm) (rate(obs_process_cpu_joules_total[1m]))", "process"),
            )
        ),
    ),
    Family(
        "kepler",
        "kepler_process_cpu_watts",
        " or ".join(
            (
                _kind("sum by (instance, zone) (kepler_node_cpu_watts)", "zone"),
                _kind("sum by (instance, pid, comm) (kepler_process_cpu_watts)", "process"),
                _kind("sum by (instance, container_name) (kepler_container_cpu_watts)", "container"),
            )
        ),
    ),
    Family(
        "scaphandre",
        "scaph_process_power_consumption_microwatts",
        " or ".join(
            (
                _kind(
                    "label_replace(sum by (instance) (scaph_host_power_microwatts) / 1e6, "
                    '"zone", "host", "", "")',
                    "zone",
                ),
                _kind(
                    "sum by (instance, pid, exe) (scaph_process_power_consumption_microwatts) / 1e6",
                    "process",
                ),
            )
        ),
    ),
)


class PolledSource:
    """What both read-only sources share: the poller, the last two fetches, the instance."""

    name = ""
    mode = "live"
    reports = "prometheus"  # the service whose shared health this source's requests feed

    def __init__(
        self, client: Client, refresh_s: float = 15.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client.reader(self.name)
        self.refresh_s = refresh_s
        self.clock = clock
        self.instance = ALL
        self._poller: Poller | None = None
        self._seen_at: float | None = None
        self._latest: Any = None
        self._before: Any = None

    def available(self) -> Capability:
        if self._poller is None:
            self._poller = Poller(self.client, self._fetch, interval_s=self.refresh_s)
        return Capability(True)

    def _fetch(self, client: Client) -> Any:
        raise NotImplementedError

    def _fetched(self) -> Any:
        """The newest fetch; shifts the previous one to _before when a new one arrived.
        Raises SourceError with the poller's reason when it has nothing (yet, or any more)."""
        assert self._poller is not None
        state = self._poller.state()
        if state.error:  # the pane keeps its last numbers and shows this reason
            raise SourceError(f"Prometheus: {state.error}")
        if state.value is None:
            raise SourceError("waiting for Prometheus's first answer")
        if state.fetched_at != self._seen_at:
            self._seen_at = state.fetched_at
            self._before, self._latest = self._latest, state.value
        return self._latest

    @property
    def instances(self) -> tuple[str, ...]:
        return self._latest.instances() if self._latest is not None else ()

    def select_instance(self, instance: str) -> None:
        self.instance = instance

    def health(self) -> Capability | None:
        """How this source's requests fared, from the shared health (None before the first)."""
        return self.client.health.reader(self.name)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the first answer (for `snapshot`, never the UI)."""
        self.available()
        assert self._poller is not None
        self._poller.wait_first(timeout_s)

    def wait_fresh(self, timeout_s: float) -> None:
        """Block until a fetch newer than the last one (for `snapshot`'s second frame)."""
        self.available()
        assert self._poller is not None
        attempts = self._poller.state().attempts
        if attempts:
            self._poller.refresh()
        deadline = time.monotonic() + timeout_s
        while self._poller.state().attempts <= attempts and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        if self._poller is not None:
            self._poller.close()
            self._poller = None


class PromRedSource(PolledSource):
    """http_server_request_duration_seconds (obs-tui's exporter, Beyla) -> the RED section."""

    name = "red"

    def _fetch(self, client: Client) -> PromFetch:
        at = self.clock()
        parts: dict[tuple, dict[str, Any]] = {}
        for row in client.query(RED_QUERY):
            labels, value = row["metric"], float(row["value"][1])
            try:
                status = int(labels.get("http_response_status_code", "0") or 0)
            except ValueError:
                status = 0
            key = (
                labels.get("instance", ""),
                labels.get("service_name", "?"),
                labels.get("http_request_method", ""),
                labels.get("http_route", ""),
                status,
            )
            part = parts.setdefault(key, {"count": 0.0, "sum": 0.0, "le": []})
            le = labels.get("le", "")
            if le in ("count", "sum"):
                part[le] = value
            elif le and le != "+Inf":
                part["le"].append((float(le), value))
        return PromFetch(
            at, {k: PromHist(p["count"], p["sum"], tuple(sorted(p["le"]))) for k, p in parts.items()}
        )

    def sample(self, now: float) -> PromRedRaw:
        latest = self._fetched()
        return PromRedRaw(latest, self._before, self.instance)


class PromPowerSource(PolledSource):
    """Kepler, Scaphandre or obs-tui's own obs_* metrics, whichever Prometheus has -> power."""

    name = "power"

    def __init__(
        self, client: Client, refresh_s: float = 15.0, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, refresh_s, clock)
        self.family: str | None = None

    def _discover(self, client: Client) -> str:
        names = set(
            client.label_values("__name__", ['{__name__=~"' + "|".join(f.marker for f in FAMILIES) + '"}'])
        )
        for family in FAMILIES:  # in order of preference
            if family.marker in names:
                return family.name
        raise SourceError(
            "no power metrics in Prometheus (looked for " + ", ".join(f.marker for f in FAMILIES) + ")"
        )

    def _fetch(self, client: Client) -> PowerSample:
        if self.family is None:
            self.family = self._discover(client)
        family = next(f for f in FAMILIES if f.name == self.family)
        at = self.clock()
        rows = []
        for row in client.query(family.query):
            labels = row["metric"]
            rows.append(
                (
                    labels.get("instance", ""),
                    labels.get("obs_kind", ""),
                    tuple(sorted((k, v) for k, v in labels.items() if k not in ("instance", "obs_kind"))),
                    float(row["value"][1]),
                )
            )
        return PowerSample(at, family.name, tuple(rows))

    def sample(self, now: float) -> PromPowerRaw:
        return PromPowerRaw(self._fetched(), self.instance)
