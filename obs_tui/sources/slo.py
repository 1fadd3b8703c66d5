"""The SLO source: configured, file-defined and discovered SLOs, read from Prometheus by a worker.

Each round of the worker (every [prometheus] refresh_s, backing off after failures):
1. now and then (first round, then every DISCOVER_EVERY rounds) discover SLOs with one `series`
   request (Autometrics objectives, Sloth recording rules) and check each latency SLO's
   threshold against its histogram's buckets (one `label values` request each);
2. send one instant query per SLO (all windows in one PromQL), POOL at a time;
3. when the sparklines are older than SPARK_REFRESH_S, one range query for all SLOs' 1 h burn.
`sample(now)` never waits: it hands the engine the last readings, with their age and errors.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from obs_tui.model import Capability
from obs_tui.raw import SloRaw, SloReading
from obs_tui.sources import slo_specs
from obs_tui.sources.prometheus import Client, Poller, PrometheusError
from obs_tui.sources.slo_specs import SloSpec

POOL = 4
DISCOVER_EVERY = 20  # rounds: every 5 min at the default 15 s
RECHECK_EVERY = 4  # rounds, while a histogram had no buckets yet (just started?)
DISCOVER_LOOKBACK_S = 86400  # a series seen in the last day counts as present
SPARK_RANGE_S = 6 * 3600  # the sparkline covers the last 6 h
SPARK_STEP_S = 15 * 60
SPARK_REFRESH_S = 5 * 60


class SloSource:
    name = "slo"
    mode = "live"
    reports = "prometheus"  # the service whose shared health this source's requests feed

    def __init__(
        self,
        client: Client,
        specs: list[SloSpec],
        refresh_s: float = 15.0,
        discover: bool = True,
        pool: int = POOL,
        clock=time.time,
        backoff_min_s: float = 1.0,
        backoff_max_s: float = 120.0,
    ) -> None:
        self.specs = list(specs)
        self.discover = discover
        self.clock = clock
        self.client = client.reader(self.name)
        self.url = client.url
        self._pool = ThreadPoolExecutor(max_workers=pool, thread_name_prefix="slo-query")
        self._active: list[SloSpec] = []
        self._readings: dict[str, SloReading] = {}
        # The configured SLOs show at once ("waiting for the first query"), before any answer.
        self._published: tuple[SloReading, ...] = tuple(_blank(s) for s in self.specs)
        self._problems: dict[str, str] = {}  # name -> why it cannot be queried (a latency bucket)
        self._recheck = False  # a histogram had no buckets yet (or the check failed): ask again
        self._rounds = 0
        self._spark_at = 0.0
        self.poller = Poller(
            self.client,
            self._round,
            interval_s=float(refresh_s),
            backoff_min_s=backoff_min_s,
            backoff_max_s=backoff_max_s,
            clock=clock,
        )

    # ---- the Source protocol --------------------------------------------------------------

    def available(self) -> Capability:
        return Capability(True)

    def sample(self, now: float) -> SloRaw:
        error = self.poller.state().error  # the whole last round failed
        health = self.health()
        if not error and health is not None and health.state == "off":
            error = health.reason  # this round's requests fail so far: say it now, not after it
        readings = self._published
        if error:  # every SLO shows it beside its older numbers
            readings = tuple(replace(r, error=error) for r in readings)
        return SloRaw(now, readings)

    def health(self) -> Capability | None:
        """How this source's requests fared, from the shared health (None before the first)."""
        return self.client.health.reader(self.name)

    def wait_ready(self, timeout_s: float) -> bool:
        return self.poller.wait_first(timeout_s)

    def close(self) -> None:
        # the client is shared: its owner (the engine's assembly) closes it
        self.poller.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- one round, in the worker thread --------------------------------------------------

    def _round(self, client: Client) -> int:
        now = self.clock()
        recheck = self._recheck and self._rounds % RECHECK_EVERY == 0
        if self._rounds % DISCOVER_EVERY == 0 or not self._active or recheck:
            self._active = self._resolve(client, now)
        self._rounds += 1
        futures = {
            spec.name: self._pool.submit(client.query, slo_specs.window_query(spec), now)
            for spec in self._active
            if not self._problem(spec)
        }
        failures: list[str] = []
        readings: dict[str, SloReading] = {}
        for spec in self._active:
            old = self._readings.get(spec.name) or _blank(spec)
            if spec.name not in futures:
                readings[spec.name] = replace(old, problem=self._problem(spec))
                continue
            try:
                readings[spec.name] = self._reading(spec, old, futures[spec.name].result(), now)
            except PrometheusError as exc:
                failures.append(str(exc))
                readings[spec.name] = replace(old, error=str(exc))
        if now - self._spark_at >= SPARK_REFRESH_S:
            readings = self._sparklines(client, readings, now)
        self._readings = readings
        self._published = tuple(readings.values())
        if futures and len(failures) == len(futures):
            raise PrometheusError(failures[0])  # nothing answered: let the poller back off
        return len(futures)

    def _reading(self, spec: SloSpec, old: SloReading, rows: list[dict], now: float) -> SloReading:
        errors, totals, ratios, extra = slo_specs.parse_result(rows)
        objective, period = spec.objective, spec.period
        if spec.sloth_id:  # recording rules carry their own objective and period
            objective = extra.get("objective", old.objective)
            if extra.get("period_days"):
                period = f"{int(extra['period_days'])}d"
        return replace(
            old,
            objective=objective,
            period=period,
            errors=tuple(errors.items()),
            totals=tuple(totals.items()),
            ratios=tuple(ratios.items()),
            promql=slo_specs.window_query(spec),
            fetched_at=now,
            error="",
            problem="",
        )

    def _problem(self, spec: SloSpec) -> str:
        return self._problems.get(spec.name, "")

    def _resolve(self, client: Client, now: float) -> list[SloSpec]:
        """Configured specs plus discovered ones (by name), latency buckets checked."""
        specs = list(self.specs)
        if self.discover:
            try:
                series = client.series(
                    slo_specs.AUTOMETRICS_MATCHERS + slo_specs.SLOTH_MATCHERS, now - DISCOVER_LOOKBACK_S, now
                )
                found = slo_specs.discovered(series)
            except PrometheusError:  # keep what was found before; the queries will say why
                found = [s for s in self._active if s.source == "autometrics" or s.sloth_id]
            names = {s.name for s in specs}
            specs += [s for s in found if s.name not in names]
        problems: dict[str, str] = {}
        checked = []
        self._recheck = False
        for spec in specs:
            if spec.histogram:  # a threshold that is no bucket would count every call as good
                try:
                    les = client.label_values("le", [f"{spec.histogram}_bucket{{{spec.selector}}}"])
                except PrometheusError as exc:
                    les, problems[spec.name] = [], f"cannot check the buckets: {exc}"
                else:
                    le, problems[spec.name] = slo_specs.bucket_problem(spec, les)
                    spec = slo_specs.with_bucket(spec, le) if le else spec
                self._recheck |= not les
            checked.append(spec)
        self._problems = problems
        return checked

    def _sparklines(
        self, client: Client, readings: dict[str, SloReading], now: float
    ) -> dict[str, SloReading]:
        """One range query for every SLO's 1 h burn rate over the last SPARK_RANGE_S."""
        labels = {
            f"s{i}": spec
            for i, spec in enumerate(self._active)
            if readings[spec.name].objective is not None and not self._problem(spec)
        }
        if not labels:
            return readings
        query = " or ".join(
            slo_specs.burn_1h_query(spec, objective, label)
            for label, spec in labels.items()
            if (objective := readings[spec.name].objective) is not None
        )
        try:
            rows = client.query_range(query, now - SPARK_RANGE_S, now, SPARK_STEP_S)
        except PrometheusError:
            return readings  # sparklines are a nicety: keep the old ones, retry next round
        self._spark_at = now
        steps = int(SPARK_RANGE_S // SPARK_STEP_S) + 1
        start = round(now - SPARK_RANGE_S)
        out = dict(readings)
        by_label = {row["metric"].get("obs_slo"): row["values"] for row in rows}
        for label, spec in labels.items():
            points: list[float | None] = [None] * steps
            for t, v in by_label.get(label, []):
                i = int(round((float(t) - start) / SPARK_STEP_S))
                value = float(v)
                if 0 <= i < steps and value == value and value not in (float("inf"), float("-inf")):
                    points[i] = value
            out[spec.name] = replace(out[spec.name], burn_history=tuple(points))
        return out


def _blank(spec: SloSpec) -> SloReading:
    return SloReading(
        spec.name,
        spec.source,
        spec.objective,
        spec.period,
        slo_specs.window_query(spec),
        description=spec.description,
    )
