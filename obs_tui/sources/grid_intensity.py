"""carbon.intensity_query: a live grid carbon intensity (gCO2e/kWh) from a PromQL query,
polled by the Prometheus worker so the engine's carbon join only reads its last value."""

from __future__ import annotations

import math

from obs_tui.sources.prometheus import Client, Poller, PrometheusError


def intensity_value(result: list[dict], query: str) -> float:
    """The one number a grid-intensity query must give, or a one-line reason why not."""
    if not result:
        raise PrometheusError(f"carbon.intensity_query returned no series: {query}")
    if len(result) > 1:
        raise PrometheusError(
            f"carbon.intensity_query returned {len(result)} series; aggregate it to one (e.g. avg(...))"
        )
    value = float(result[0]["value"][1])
    if not math.isfinite(value) or value < 0:
        raise PrometheusError(f"carbon.intensity_query gave {value}, not a gCO2e/kWh figure")
    return value


class GridIntensityQuery:
    """Called by the carbon join: (last good value or None, why there is none or it is old)."""

    name = "grid intensity"

    def __init__(self, client: Client, query: str, refresh_s: float = 15.0) -> None:
        self.query = query
        self.client = client.reader(self.name)
        self.poller = Poller(
            self.client, lambda c: intensity_value(c.query(query), query), interval_s=float(refresh_s)
        )

    def __call__(self) -> tuple[float | None, str]:
        state = self.poller.state()
        return state.value, state.error or ("" if state.attempts else "waiting for the first answer")

    def wait_ready(self, timeout_s: float) -> None:
        self.poller.wait_first(timeout_s)

    def close(self) -> None:
        self.poller.close()
