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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from obs_tui.model import Capability

WAITING = "waiting for the first answer"


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
        self.requests = 0  # every request of every reader (for benches and tests)

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
            r.answered_at = self.clock()
            r.round_answered = True
            if not (r.round_failed and r.in_rounds):
                r.failing_since, r.reason = None, ""
                r.round_failed = False

    def failed(self, reader: str, reason: str) -> None:
        with self._lock:
            r = self._readers.setdefault(reader, _Reader())
            if r.failing_since is None:
                r.failing_since = self.clock()
            r.reason = reason
            r.round_failed = True

    # ---- what the engine reads ----------------------------------------------------------------

    def reader(self, reader: str) -> Capability | None:
        """One reader's health (None before its first request finished)."""
        with self._lock:
            r = self._readers.get(reader)
            if r is None or (r.answered_at is None and r.failing_since is None):
                return None
            return _capability(r)

    def capability(self) -> Capability:
        """The service's health over all its readers."""
        with self._lock:
            done = [
                r for r in self._readers.values() if r.answered_at is not None or r.failing_since is not None
            ]
            if not done:
                return Capability(False, WAITING, state="off")
            caps = [_capability(r) for r in done]
        failing = sorted((c for c in caps if not c.ok), key=lambda c: c.stale_since or 0.0)
        if not failing:
            return Capability(True)
        first = failing[0]
        state = "off" if all(c.state == "off" for c in caps) else "degraded"
        return Capability(False, first.reason, state=state, stale_since=first.stale_since)


def _capability(r: _Reader) -> Capability:
    if r.failing_since is None:
        return Capability(True)
    state = "degraded" if r.round_answered else "off"
    return Capability(False, r.reason, state=state, stale_since=r.failing_since)
