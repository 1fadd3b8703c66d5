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

from obs_tui.analysis.processes import process_samples
from obs_tui.analysis.red import red_section
from obs_tui.model import Capability, Frame, SourceStatus
from obs_tui.sources.base import Source

# source name -> (Frame field, analysis(prev_raw, cur_raw, dt) -> section)
Analysis = Callable[[Any, Any, float], Any]
ANALYSES: dict[str, tuple[str, Analysis]] = {
    "procs": ("processes", process_samples),
    "red": ("red", red_section),
}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Engine:
    def __init__(self, sources: list[Source], capabilities: dict[str, Capability] | None = None,
                 interval: float = 1.0, clock: Callable[[], float] = time.time,
                 host: str | None = None) -> None:
        self.sources = list(sources)
        self.capabilities = dict(capabilities or {})
        self.interval = interval
        self.clock = clock
        self.host = host or socket.gethostname()
        self.started_at = clock()
        self.privileges = None  # privileges.Dropped, set by the cli once root is given up
        self._status: dict[str, SourceStatus] = {}
        self._active: list[Source] = []
        self._prev_raw: dict[str, Any] = {}
        self._sections: dict[str, Any] = {}
        self._prev_now: float | None = None
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
            field, analyse = ANALYSES[name]
            try:
                self._sections[field] = analyse(self._prev_raw.get(name), raw, dt)
            except Exception as exc:
                self._status[name] = replace(self._status[name], stale=True,
                                             reason=f"analysis failed: {_reason(exc)}")
                continue
            self._prev_raw[name] = raw
            self._status[name] = SourceStatus(name, source.mode, self._notes[name])
        self._prev_now = now
        return Frame(host=self.host, taken_at=now, duration_s=dt,
                     uptime_s=_host_uptime(), interval_s=self.interval,
                     capabilities=tuple(sorted(self.capabilities.items())),
                     sources=tuple(self._status[s.name] for s in self.sources),
                     **self._sections)

    def close(self) -> None:
        for source in self.sources:
            try:
                source.close()
            except Exception:
                pass  # closing is best effort; a source that cannot close holds nothing we need


def _host_uptime() -> float:
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return 0.0
