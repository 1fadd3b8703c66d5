"""The engine: owns the clock and the sources, and turns their samples into Frames.

One tick samples every available source, isolates failures (a source that raises is
marked stale with the reason and keeps its last section; the others go on), runs the pure
analysis on (previous, current) samples and emits one immutable Frame. The TUI, `snapshot`
and the exporter all read these Frames: this is the one place numbers are computed.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from typing import Any, Callable

from obs_tui.analysis.attribution import carry_totals, power_section
from obs_tui.analysis.processes import process_samples
from obs_tui.analysis.prom_power import prom_power_section
from obs_tui.analysis.prom_red import ALL, prom_red_section
from obs_tui.analysis.red import red_section
from obs_tui.analysis.slo import slo_section
from obs_tui.model import Capability, Frame, SourceStatus
from obs_tui.sources.base import Source

# source's analysis key (its `analysis` attribute, else its name)
#   -> (Frame field, analysis(prev_raw, cur_raw, dt) -> section)
Analysis = Callable[[Any, Any, float], Any]
ANALYSES: dict[str, tuple[str, Analysis]] = {
    "procs": ("processes", process_samples),
    "red": ("red", red_section),
    "power": ("power", power_section),
    "red.prometheus": ("red", prom_red_section),  # read-only mode (sources/readonly.py)
    "power.prometheus": ("power", prom_power_section),
    "slo": ("slo", slo_section),
}
# analysis key -> carry(previous section, this tick's section) -> section: the totals since
# start (joules) that one pair of samples cannot give. Read-only power has none: Prometheus
# holds the history, and its joules are the frame's window.
Carry = Callable[[Any, Any], Any]
CARRIES: dict[str, Carry] = {
    "power": carry_totals,
}


# A join reads the sections of this tick (Frame field -> section) after every source has been
# sampled, and returns the section for its own Frame field (or None when its inputs are missing).
# Joins are built by cli.make_engine with their config: (Frame field, fn(sections, dt)). A join
# built on estimated inputs says so with a `mode` attribute ("estimate"), read after each call.
Join = Callable[[dict[str, Any], float], Any]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Engine:
    def __init__(self, sources: list[Source], capabilities: dict[str, Capability] | None = None,
                 interval: float = 1.0, clock: Callable[[], float] = time.time,
                 host: str | None = None, joins: list[tuple[str, Join]] | None = None,
                 sinks: list[Callable[[Frame], None]] | None = None) -> None:
        self.sources = list(sources)
        self.joins = list(joins or [])
        self.sinks = list(sinks or [])  # called with every Frame (the exporter)
        self.capabilities = dict(capabilities or {})
        self.interval = interval
        self.clock = clock
        self.host = host or socket.gethostname()
        self.started_at = clock()
        self.privileges = None  # privileges.Dropped, set by the cli once root is given up
        self.history = None  # history.store.Store the frames are recorded to (or read from)
        self.history_note = ""  # why there is no history, or whose recording is read
        self._status: dict[str, SourceStatus] = {}
        self._active: list[Source] = []
        self._prev_raw: dict[str, Any] = {}
        self._sections: dict[str, Any] = {}
        self._prev_now: float | None = None
        self.instance = ALL
        self._notes: dict[str, str] = {}
        for source in self.sources:
            try:
                cap = source.available()
            except Exception as exc:  # a broken probe of availability is itself a reason
                cap = Capability(False, _reason(exc))
            if cap.ok:
                self._active.append(source)
                # ok with a reason: working, but in part (say, HTTPS not traced); kept on
                # every tick's status so the pane can say what is missing
                self._notes[source.name] = cap.reason
                self._status[source.name] = SourceStatus(source.name, source.mode, cap.reason)
            else:
                self._status[source.name] = SourceStatus(source.name, "off", cap.reason)
        for field, _ in self.joins:
            self._status[field] = SourceStatus(field, "off", "waiting for its inputs", join=True)

    # ---- the fleet: sources that read many hosts (read-only mode) show one at a time ----

    def instances(self) -> tuple[str, ...]:
        """Every `instance` the fleet sources have seen, sorted."""
        return tuple(sorted({i for s in self.sources for i in getattr(s, "instances", ())}))

    def select_instance(self, instance: str) -> None:
        """ALL ("") adds up every instance. Takes effect at the next tick, with no request."""
        self.instance = instance
        for source in self.sources:
            if hasattr(source, "select_instance"):
                source.select_instance(instance)

    def cycle_instance(self, step: int = 1) -> str:
        choices = (ALL, *self.instances())
        at = choices.index(self.instance) if self.instance in choices else 0
        self.select_instance(choices[(at + step) % len(choices)])
        return self.instance

    def wait_fresh(self, timeout_s: float) -> None:
        """Block until every polled source has a fetch newer than the last (for `snapshot`)."""
        for source in self._active:
            if hasattr(source, "wait_fresh"):
                source.wait_fresh(timeout_s)

    def status(self, name: str) -> SourceStatus | None:
        return self._status.get(name)

    def tick(self, now: float | None = None) -> Frame:
        now = self.clock() if now is None else now
        dt = now - self._prev_now if self._prev_now is not None else 0.0
        for source in self._active:
            name = source.name
            try:
                raw = source.sample(now)
            except Exception as exc:
                self._status[name] = replace(self._status[name], stale=True, reason=_reason(exc))
                continue
            key = getattr(source, "analysis", "") or name
            field, analyse = ANALYSES[key]
            try:
                section = analyse(self._prev_raw.get(name), raw, dt)
                carry = CARRIES.get(key)
                if carry is not None:
                    section = carry(self._sections.get(field), section)
                self._sections[field] = section
            except Exception as exc:
                self._status[name] = replace(self._status[name], stale=True,
                                             reason=f"analysis failed: {_reason(exc)}")
                continue
            self._prev_raw[name] = raw
            self._status[name] = SourceStatus(name, source.mode, self._notes[name])
            self._take_health(source)
        self._run_joins(dt)
        self._prev_now = now
        frame = Frame(host=self.host, taken_at=now, duration_s=dt,
                      uptime_s=_host_uptime(), interval_s=self.interval,
                      capabilities=tuple(sorted(self.capabilities.items())),
                      sources=tuple(self._status[name] for name in self._names()),
                      instance=self.instance, instances=self.instances(),
                      **self._sections)
        for sink in self.sinks:
            sink(frame)
        return frame

    def _take_health(self, source: Source) -> None:
        """A source whose worker talks to a service (Prometheus) reports its reachability: it
        updates that capability and marks the source stale while the service fails."""
        health = getattr(source, "health", None)
        cap = health() if health is not None else None
        if cap is None:
            return
        self.capabilities[source.reports] = cap
        if not cap.ok:
            self._status[source.name] = SourceStatus(source.name, source.mode, cap.reason, stale=True)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the sources and joins with a background worker have an answer (for
        `snapshot`)."""
        deadline = time.monotonic() + timeout_s
        for worker in [*self._active, *(join for _, join in self.joins)]:
            wait = getattr(worker, "wait_ready", None)
            if wait is not None:
                wait(max(deadline - time.monotonic(), 0.0))

    def _names(self) -> list[str]:
        return [s.name for s in self.sources] + [field for field, _ in self.joins]

    def _run_joins(self, dt: float) -> None:
        """Like a source: a join that raises keeps its last section and is marked stale."""
        for field, join in self.joins:
            try:
                section = join(dict(self._sections), dt)
            except Exception as exc:
                self._status[field] = replace(self._status[field], stale=True,
                                              reason=f"join failed: {_reason(exc)}")
                continue
            if section is None:
                self._sections.pop(field, None)
                self._status[field] = SourceStatus(field, "off", "waiting for its inputs", join=True)
            else:
                self._sections[field] = section
                self._status[field] = SourceStatus(field, getattr(join, "mode", "live"), join=True)

    def close(self) -> None:
        closers = [source.close for source in self.sources]
        closers += [join.close for _, join in self.joins if hasattr(join, "close")]
        closers += [sink.close for sink in self.sinks if hasattr(sink, "close")]  # the recorder
        if self.history is not None:
            closers.append(self.history.close)
        for close in closers:
            try:
                close()
            except Exception:
                pass  # closing is best effort; a source that cannot close holds nothing we need


def _host_uptime() -> float:
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return 0.0
