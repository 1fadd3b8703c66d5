"""One health for a service that several readers share (Prometheus): every request's outcome,
folded into one Capability that every surface shows.

The shared client reports each request it makes, tagged with the reader that made it (the SLO
source, a read-only pane, the grid-intensity query): `succeeded(reader)` or `failed(reader,
reason)`. A reader's poller marks the start of each round with `round_started(reader)`, so a
round that is only part answered reads as degraded rather than flipping between ok and failed.

    ok        every reader's latest request was answered
    degraded  some readers (or some requests of a reader's round) are answered, some are not
    off       nothing is answered: no reader's latest request worked, or none has finished yet

`stale_since` is when the data went stale: the first failure after the last answer, of the
reader that has been failing longest. A query that Prometheus rejects (HTTP 400/422: bad PromQL)
was answered: that is the reader's own problem, shown on its pane, not the service's health.

The heartbeat (the reader HEARTBEAT: `GET /-/ready` every engine tick) is a reader of its own,
and more: readers poll seldom, so while it fails every reader whose last answer came before that
failure is failing too, with the heartbeat's reason (its own, if it has one) and stale_since,
since its data can no longer be refreshed. The service is then off; it is degraded only if a
reader was answered after the heartbeat began to fail (a fresher word than the heartbeat's).
When the heartbeat is answered again, the readers it alone marked are healthy at once; a reader
whose own requests failed meanwhile stays failing until its next answer, and the service reads
degraded until then (the listeners of `on_recovery`, the readers' pollers, ask at once). The
heartbeat adds failures, never hides one: a reader whose answer was unusable stays failing
whatever the heartbeat says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from obs_tui.model import Capability

WAITING = "waiting for the first answer"
HEARTBEAT = "heartbeat"


@dataclass
class _Reader:
    answered_at: float | None = None  # the last request that was answered
    failing_since: float | None = None  # the first failure since that answer
    reason: str = ""  # the last failure
    round_failed: bool = False
    round_answered: bool = False
    in_rounds: bool = False  # a poller marks its rounds; without them the last outcome wins


class ServiceHealth:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._readers: dict[str, _Reader] = {}
        self._on_recovery: list[Callable[[], None]] = []
        self.requests = 0  # every request of every reader (for benches and tests)

    def on_recovery(self, call: Callable[[], None], listen: bool = True) -> None:
        """Call `call` whenever the heartbeat is answered after failing (listen=False: stop)."""
        with self._lock:
            if listen:
                self._on_recovery.append(call)
            elif call in self._on_recovery:
                self._on_recovery.remove(call)

    # ---- what the client reports ------------------------------------------------------------

    def round_started(self, reader: str) -> None:
        with self._lock:
            r = self._readers.setdefault(reader, _Reader())
            r.round_failed = r.round_answered = False
            r.in_rounds = True

    def sent(self) -> None:
        with self._lock:
            self.requests += 1

    def succeeded(self, reader: str) -> None:
        with self._lock:
            r = self._readers.setdefault(reader, _Reader())
            recovered = reader == HEARTBEAT and r.failing_since is not None
            r.answered_at = self.clock()
            r.round_answered = True
            if not (r.round_failed and r.in_rounds):
                r.failing_since, r.reason = None, ""
                r.round_failed = False
            wake = list(self._on_recovery) if recovered else []
        for call in wake:
            call()

    def failed(self, reader: str, reason: str) -> None:
        with self._lock:
            r = self._readers.setdefault(reader, _Reader())
            if r.failing_since is None:
                r.failing_since = self.clock()
            r.reason = reason
            r.round_failed = True

    # ---- what the engine reads ----------------------------------------------------------------

    def reader(self, reader: str) -> Capability | None:
        """One reader's health (None before its first request finished, unless the heartbeat
        fails meanwhile)."""
        with self._lock:
            r = self._readers.get(reader)
            beat = self._readers.get(HEARTBEAT)
            if r is None or (r.answered_at is None and r.failing_since is None):
                if beat is None or beat.failing_since is None or reader == HEARTBEAT:
                    return None
                r = _Reader()
            return _capability(r, None if reader == HEARTBEAT else beat)

    def capability(self) -> Capability:
        """The service's health over all its readers."""
        with self._lock:
            beat = self._readers.get(HEARTBEAT)
            done = [
                (name, r)
                for name, r in self._readers.items()
                if r.answered_at is not None or r.failing_since is not None
            ]
            if not done:
                return Capability(False, WAITING, state="off")
            caps = [_capability(r, None if name == HEARTBEAT else beat) for name, r in done]
        failing = sorted((c for c in caps if not c.ok), key=lambda c: c.stale_since or 0.0)
        if not failing:
            return Capability(True)
        first = failing[0]
        state = "off" if all(c.state == "off" for c in caps) else "degraded"
        return Capability(False, first.reason, state=state, stale_since=first.stale_since)


def _capability(r: _Reader, beat: _Reader | None = None) -> Capability:
    """A reader's health; `beat`, the heartbeat, fails it too while it fails and the reader's
    last answer is older than that failure."""
    since = beat.failing_since if beat is not None else None
    if since is not None and r.answered_at is not None and r.answered_at > since:
        since = None  # answered after the heartbeat failed: its own word is fresher
    if r.failing_since is None:
        if since is None or beat is None:
            return Capability(True)
        return Capability(False, beat.reason, state="off", stale_since=since)
    state = "degraded" if r.round_answered and since is None else "off"
    stale_since = r.failing_since if since is None else min(r.failing_since, since)
    return Capability(False, r.reason, state=state, stale_since=stale_since)
