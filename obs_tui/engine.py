"""The engine: owns the clock and the sources, and turns their samples into Frames.

One tick samples every available source, isolates failures (a source that raises is
marked stale with the reason and keeps its last section; the others go on), runs the pure
analysis on (previous, current) samples, then the joins, then what is read across the
sections (analysis/derived.py), and emits one immutable Frame. The TUI, `snapshot` and the
exporter all read these Frames: this is the one place numbers are computed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from obs_tui.analysis.derived import derive
from obs_tui.model import Capability, Frame, SourceStatus
from obs_tui.raw import ALL
from obs_tui.sources.base import Source, SourceError

# A stage's analysis(previous raw or None, this raw, seconds between them) -> its section.
Analysis = Callable[[Any, Any, float], Any]
# carry(previous section, this tick's section) -> section: the totals since start (joules) that
# one pair of samples cannot give.
Carry = Callable[[Any, Any], Any]
# While a window is open (snapshot --duration), each Frame covers the time since it opened. A
# stage's window is its analysis on (the raw at the window's start, the raw now), since raws
# are cumulative; except where two raws far apart cannot be compared (a RAPL counter can wrap
# in between): there the window is each tick's section folded in,
#   fold(window so far or None, this tick's section, window seconds so far, tick seconds).
Fold = Callable[[Any, Any, float, float], Any]
# keep(raw seen so far in the window or None, this raw) -> raw: for a source that forgets what
# it counted (a pruned process), the raw the window is compared with keeps it.
Keep = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Stage:
    """One source's way into the Frame, built at assembly (obs_tui/pipeline.py): the source,
    its pure analysis, the Frame field the section goes to, and the optional carry, window
    fold and keep its section needs."""

    source: Source
    analysis: Analysis
    field: str
    carry: Carry | None = None
    fold: Fold | None = None
    keep: Keep | None = None

    @property
    def name(self) -> str:
        return self.source.name


@dataclass
class _Window:
    start: float
    base: dict[str, tuple[float, Any]]  # source name -> (when, raw) at the window's start
    kept: dict[str, Any] = field(default_factory=dict)  # name -> raw with what it forgot (keep)
    folded: dict[str, tuple[float, Any]] = field(default_factory=dict)  # name -> (seconds, section)


# A join reads the sections of this tick (Frame field -> section) after every source has been
# sampled, and returns the section for its own Frame field (or None when its inputs are missing).
# Joins are built by the assembly (obs_tui/pipeline.py) with their config: (Frame field,
# fn(sections, dt)). A join built on estimated inputs says so with a `mode` (Moded), read after
# each call.
Join = Callable[[dict[str, Any], float], Any]


class ServiceHealthLike(Protocol):
    def capability(self) -> Capability: ...


class Service(Protocol):
    """A service several sources read through one client (Prometheus): its one health is the
    capability of that name on every surface."""

    @property
    def health(self) -> ServiceHealthLike: ...

    def close(self) -> None: ...


@runtime_checkable
class Beating(Protocol):
    """A service that can check, every tick, that it still answers (Prometheus's /-/ready)."""

    def start_heartbeat(self, interval_s: float) -> None: ...


# The optional abilities of sources, joins and sinks. The engine sorts its workers by them
# once, when it is built; a tick never asks an object what it can do.


@runtime_checkable
class Reporting(Protocol):
    """A source whose data comes from a service: `reports` names it, `health()` says how this
    source's own requests fared (None before the first finished)."""

    name: str
    reports: str

    def health(self) -> Capability | None: ...


@runtime_checkable
class Fleet(Protocol):
    """A source that reads many hosts (read-only mode) and shows one at a time."""

    @property
    def instances(self) -> tuple[str, ...]: ...

    def select_instance(self, instance: str) -> None: ...


@runtime_checkable
class WaitsReady(Protocol):
    """A worker with a background thread: blocks until its first answer (for `snapshot`)."""

    def wait_ready(self, timeout_s: float) -> object: ...


@runtime_checkable
class WaitsFresh(Protocol):
    """A polled source: blocks until a fetch newer than the last (for `snapshot`)."""

    def wait_fresh(self, timeout_s: float) -> None: ...


@runtime_checkable
class Closable(Protocol):
    """A join or sink that holds something to release (the recorder, a live query)."""

    def close(self) -> None: ...


@runtime_checkable
class Moded(Protocol):
    """A join whose section is "live" or "estimate" depending on its inputs."""

    mode: str


class EngineView(Protocol):
    """What the console (tui/app.py) asks of the engine it drives, and all it asks: Frames,
    one tick at a time on the console's worker thread; a first wait for the polled sources;
    the fleet's next host, chosen from the UI thread under the engine's lock and shown from
    the next Frame on; the recorded history, for replay. The Engine is one; the tests' engine
    that replays made-up Frames is another."""

    @property
    def interval(self) -> float: ...

    @property
    def history(self) -> Any: ...  # history.store.Store (a higher layer) or None

    @property
    def history_note(self) -> str: ...  # why there is no history, or whose recording is read

    def tick(self, now: float | None = None) -> Frame: ...

    def wait_ready(self, timeout_s: float) -> None: ...

    def cycle_instance(self, step: int = 1) -> str: ...

    def close(self) -> None: ...


def reason_of(exc: BaseException) -> str:
    """A failure as one line for a pane: obs-tui's own errors (SourceError, ConfigError,
    PrometheusError...) carry their message as written, an OSError is said as the system says
    it; anything else is a bug of ours and says so (the only place an exception's class name
    shows, inside the parenthesis)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    if isinstance(exc, (SourceError, OSError)) or type(exc).__module__.startswith("obs_tui."):
        return text or "failed"
    return (
        f"internal error ({type(exc).__name__}: {text})" if text else f"internal error ({type(exc).__name__})"
    )


class Engine:
    def __init__(
        self,
        stages: Sequence[Stage],
        capabilities: dict[str, Capability] | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
        joins: list[tuple[str, Join]] | None = None,
        sinks: list[Callable[[Frame], None]] | None = None,
        services: Mapping[str, Service] | None = None,
    ) -> None:
        self.stages = list(stages)
        self.sources = [stage.source for stage in self.stages]
        self.services = dict(services or {})  # capability name -> shared client (its health)
        # checked once, here: the sources whose health comes from a service, the fleet's
        self._reporting: dict[str, Reporting] = {s.name: s for s in self.sources if isinstance(s, Reporting)}
        self._fleet: list[Fleet] = [s for s in self.sources if isinstance(s, Fleet)]
        self.joins = list(joins or [])
        self.sinks = list(sinks or [])  # called with every Frame (the exporter)
        self.capabilities = dict(capabilities or {})
        self.interval = interval
        self.clock = clock
        self.host = host or socket.gethostname()
        self.started_at = clock()
        self.privileges: Any = None  # privileges.Dropped, set once root is given up
        self.history: Any = None  # history.store.Store the frames are recorded to (or read from)
        self.history_note = ""  # why there is no history, or whose recording is read
        self._status: dict[str, SourceStatus] = {}
        self._stale_since: dict[str, float] = {}  # source -> first failure since its last data
        self._active: list[Stage] = []
        self._prev_raw: dict[str, tuple[float, Any]] = {}  # name -> (when, its last good raw)
        self._window: _Window | None = None
        self._sections: dict[str, Any] = {}
        self._prev_now: float | None = None
        # The host shown: chosen from any thread (the UI's) under the lock, handed to the fleet
        # sources by the tick, so one Frame's instance is the instance its numbers are of.
        self._lock = threading.Lock()
        self._chosen = ALL
        self._shown = ALL
        self._notes: dict[str, str] = {}
        for stage in self.stages:
            source = stage.source
            try:
                cap = source.available()
            except Exception as exc:  # a broken probe of availability is itself a reason
                cap = Capability(False, reason_of(exc))
            if cap.ok:
                self._active.append(stage)
                # ok with a reason: working, but in part (say, HTTPS not traced); kept on
                # every tick's status so the pane can say what is missing
                self._notes[source.name] = cap.reason
                self._status[source.name] = SourceStatus(source.name, source.mode, cap.reason)
            else:
                self._status[source.name] = SourceStatus(source.name, "off", cap.reason)
        for target, _ in self.joins:
            self._status[target] = SourceStatus(target, "off", "waiting for its inputs", join=True)
        for service in self.services.values():  # a fault is seen within a tick (close() stops it)
            if isinstance(service, Beating):
                service.start_heartbeat(interval)

    # ---- the fleet: sources that read many hosts (read-only mode) show one at a time ----

    @property
    def instance(self) -> str:
        """The host chosen (ALL for every one), shown from the next Frame on; the UI reads
        the Frame's."""
        with self._lock:
            return self._chosen

    def instances(self) -> tuple[str, ...]:
        """Every `instance` the fleet sources have seen, sorted."""
        return tuple(sorted({i for s in self._fleet for i in s.instances}))

    def select_instance(self, instance: str) -> None:
        """ALL ("") adds up every instance. Takes effect at the next tick, with no request."""
        with self._lock:
            self._chosen = instance

    def cycle_instance(self, step: int = 1) -> str:
        """The next host in the fleet (after the last, ALL), from any thread."""
        instances = self.instances()
        with self._lock:
            choices = (ALL, *instances)
            at = choices.index(self._chosen) if self._chosen in choices else 0
            self._chosen = choices[(at + step) % len(choices)]
            return self._chosen

    def wait_fresh(self, timeout_s: float) -> None:
        """Block until every polled source has a fetch newer than the last (for `snapshot`)."""
        for stage in self._active:
            if isinstance(stage.source, WaitsFresh):
                stage.source.wait_fresh(timeout_s)

    def status(self, name: str) -> SourceStatus | None:
        return self._status.get(name)

    def open_window(self) -> None:
        """From the last tick on, each Frame covers the time since that tick (for `snapshot
        --duration`): counts, energies and CPU seconds are totals over the window, rates and
        watts are over it, quantiles are of its requests. Tick at the interval meanwhile."""
        self._window = _Window(
            self._prev_now if self._prev_now is not None else self.clock(), dict(self._prev_raw)
        )

    def tick(self, now: float | None = None) -> Frame:
        """One Frame. Each source's sample is timed when it is taken, not when the tick began:
        on a busy host the sources before it can take hundreds of ms, and its rates would be
        off by as much (`now`, when given, times them all, for tests)."""
        given = now
        now = self.clock() if given is None else given
        with self._lock:
            instance = self._chosen
        if instance != self._shown:
            self._shown = instance
            for source in self._fleet:
                source.select_instance(instance)
        dt = now - self._prev_now if self._prev_now is not None else 0.0
        for stage in self._active:
            name = stage.name
            at = self.clock() if given is None else given
            try:
                raw = stage.source.sample(at)
            except Exception as exc:
                reporting = self._reporting.get(name)
                cap = reporting.health() if reporting is not None else None
                self._stale(name, reason_of(exc), now, cap.stale_since if cap is not None else None)
                continue
            try:
                self._sections[stage.field] = self._section(stage, raw, at)
            except Exception as exc:
                self._stale(name, f"analysis failed: {reason_of(exc)}", now)
                continue
            self._prev_raw[name] = (at, raw)
            self._status[name] = SourceStatus(name, stage.source.mode, self._notes[name])
            self._stale_since.pop(name, None)
            if name in self._reporting:
                self._take_health(self._reporting[name], now)
        # After the sources: a reader's failure that a source's section already shows is in
        # the service's health too, so one frame never says both "failing" and "ok".
        for name, service in self.services.items():
            self.capabilities[name] = service.health.capability()
        window = now - self._window.start if self._window is not None else dt
        self._run_joins(window)
        self._prev_now = now
        frame = derive(
            Frame(
                host=self.host,
                taken_at=now,
                duration_s=window,
                uptime_s=_host_uptime(),
                interval_s=self.interval,
                capabilities=tuple(sorted(self.capabilities.items())),
                sources=tuple(self._status[name] for name in self._names()),
                instance=instance,
                instances=self.instances(),
                **self._sections,
            )
        )
        for sink in self.sinks:
            sink(frame)
        return frame

    def _section(self, stage: Stage, raw: Any, now: float) -> Any:
        """The source's section for this Frame. The time between two raws is the source's own
        (since its last good sample), not the engine's: after a failed sample the next one
        covers two ticks."""
        name, analyse = stage.name, stage.analysis
        prev_at, prev = self._prev_raw.get(name, (now, None))
        window = self._window
        if window is None:
            section = analyse(prev, raw, now - prev_at)
            if stage.carry is None:
                return section
            return stage.carry(self._sections.get(stage.field), section)
        if stage.fold is None:
            base_at, base = window.base.setdefault(name, (now, raw))  # no sample at the start
            if stage.keep is not None:
                raw = window.kept[name] = stage.keep(window.kept.get(name, base), raw)
            return analyse(base, raw, now - base_at)
        seconds, so_far = window.folded.get(name, (0.0, None))
        section = stage.fold(so_far, analyse(prev, raw, now - prev_at), seconds, now - prev_at)
        window.folded[name] = (seconds + now - prev_at, section)
        return section

    def _stale(self, name: str, reason: str, now: float, since: float | None = None) -> None:
        """The source keeps its last section; its status says why and since when."""
        at = self._stale_since.setdefault(name, since if since is not None else now)
        self._status[name] = replace(self._status[name], stale=True, reason=reason, stale_since=at)

    def _take_health(self, source: Reporting, now: float) -> None:
        """A source that reads a shared service is stale while its own requests fail (its
        data is then the last answer's), with the service's reason and since when."""
        cap = source.health()
        if cap is not None and not cap.ok:
            self._stale(source.name, cap.reason, now, cap.stale_since)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the sources and joins with a background worker have an answer (for
        `snapshot`)."""
        deadline = time.monotonic() + timeout_s
        workers = [stage.source for stage in self._active] + [join for _, join in self.joins]
        for worker in workers:
            if isinstance(worker, WaitsReady):
                worker.wait_ready(max(deadline - time.monotonic(), 0.0))

    def _names(self) -> list[str]:
        return [s.name for s in self.sources] + [target for target, _ in self.joins]

    def _run_joins(self, dt: float) -> None:
        """Like a source: a join that raises keeps its last section and is marked stale."""
        for target, join in self.joins:
            try:
                section = join(dict(self._sections), dt)
            except Exception as exc:
                self._status[target] = replace(
                    self._status[target], stale=True, reason=f"join failed: {reason_of(exc)}"
                )
                continue
            if section is None:
                self._sections.pop(target, None)
                self._status[target] = SourceStatus(target, "off", "waiting for its inputs", join=True)
            else:
                self._sections[target] = section
                mode = join.mode if isinstance(join, Moded) else "live"
                self._status[target] = SourceStatus(target, mode, join=True)

    def close(self) -> None:
        closers: list[Callable[[], None]] = [source.close for source in self.sources]
        others: list[object] = [join for _, join in self.joins] + list(self.sinks)  # the recorder
        closers += [other.close for other in others if isinstance(other, Closable)]
        if self.history is not None:
            closers.append(self.history.close)
        closers += [service.close for service in self.services.values()]  # after their readers
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
