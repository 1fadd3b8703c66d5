"""Kept history per row, for the sparkline columns and the detail-screen charts.

One bounded deque per (metric, key). Series whose key vanished from the last frame are
dropped, so a host with churning processes does not grow this without bound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from obs_tui.model import Frame

KEEP = 120  # samples: two minutes at the default 1 s interval


class History:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._series: dict[tuple[str, Hashable], deque] = {}
        self._seen: set[tuple[str, Hashable]] = set()
        self.frames = 0

    def copy(self) -> History:
        other = History(self.keep)
        other._series = {k: series.copy() for k, series in self._series.items()}
        other._seen = set(self._seen)
        other.frames = self.frames
        return other

    def without_newest(self) -> History:
        """The history as it was one frame before (replay's step back): the newest sample of
        each series dropped; series of keys the newest frame no longer had stay gone."""
        other = self.copy()
        for series in other._series.values():
            if series:
                series.pop()
        other.frames = max(self.frames - 1, 0)
        return other

    def get(self, metric: str, key: Hashable = None) -> deque:
        return self._series.get((metric, key)) or deque()

    def add(self, metric: str, key: Hashable, value: float | None) -> None:
        k = (metric, key)
        series = self._series.get(k)
        if series is None:
            series = self._series[k] = deque(maxlen=self.keep)
        series.append(value)
        self._seen.add(k)

    def record(self, frame: Frame) -> None:
        self._seen = set()
        add = self.add
        for p in frame.processes:
            add("cpu", p.pid, p.cpu_percent)
            add("rss", p.pid, p.rss_bytes)
        if frame.red is not None:
            for s in frame.red.services:
                add("rps", s.key, s.rps)
                add("err", s.key, 100.0 * s.error_ratio)
                add("p50", s.key, s.p50_ms)
                add("p99", s.key, s.p99_ms)
        if frame.power is not None:
            add("host_w", None, frame.power.host_watts)
            add("idle_w", None, frame.power.idle_watts)
            for pp in frame.power.processes:
                add("w", pp.pid, pp.watts)
        if frame.carbon is not None:
            add("host_gph", None, frame.carbon.host_g_per_h)
            for pc in frame.carbon.processes:
                add("gph", pc.pid, pc.g_per_h)
        for slo in frame.slo:
            add(
                "budget",
                slo.name,
                None if slo.error_budget_remaining is None else 100.0 * slo.error_budget_remaining,
            )
        for k in self._series.keys() - self._seen:
            del self._series[k]
        self.frames += 1
