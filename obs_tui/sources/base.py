"""What every data source offers the engine.

A source does I/O and nothing else: it says whether it can work here (and why not),
returns plain data from `sample(now)`, and releases what it holds in `close()`.
"""

from __future__ import annotations

from typing import Any, Protocol

from obs_tui.model import Capability


class SourceError(Exception):
    """A sample failed in a way the user should read (shown on the pane as is)."""


class Source(Protocol):
    name: str
    # The pane badge when the source works: "live" or "estimate".
    mode: str

    def available(self) -> Capability: ...

    def sample(self, now: float) -> Any: ...

    def close(self) -> None: ...


# Optional, for sources whose worker thread talks to a service (sources/slo.py, readonly.py):
#   reports, health()                  engine.Reporting: the service they read and how their own
#                                      requests fare; the engine marks the source stale while
#                                      they fail (the service's one health is engine.Service)
#   wait_ready(timeout_s) -> bool      block until the worker's first answer (for `snapshot`)
