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


# Optional abilities are the small protocols of obs_tui/engine.py (Reporting, Fleet,
# WaitsReady, WaitsFresh), found once when the engine is built; which analysis a source feeds
# is its Stage's, built by the assembly (obs_tui/pipeline.py).
