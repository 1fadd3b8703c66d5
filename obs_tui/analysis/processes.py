"""CPU share per process from two samples of cumulative CPU seconds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from obs_tui.model import ProcessSample


def process_samples(
    prev: Mapping[int, Any] | None, cur: Mapping[int, Any], dt: float
) -> tuple[ProcessSample, ...]:
    """One ProcessSample per pid in `cur`, CPU % of one core over the last `dt` seconds.

    A pid absent from `prev` (or reused by a new process) started inside the window, so all
    its CPU time so far fell in it. Sorted by CPU % then CPU seconds, busiest first.
    """
    out = []
    for pid, raw in cur.items():
        before = prev.get(pid) if prev else None
        if before is not None and before.info.start_ticks == raw.info.start_ticks:
            used = raw.cpu_seconds - before.cpu_seconds
        else:
            used = raw.cpu_seconds if prev is not None else 0.0
        percent = 100.0 * max(used, 0.0) / dt if dt > 0 else 0.0
        info = raw.info
        out.append(
            ProcessSample(
                pid,
                info.comm,
                info.cmdline,
                info.user,
                raw.cpu_seconds,
                percent,
                raw.rss_bytes,
                info.exe,
                info.container_id,
                info.kernel_thread,
            )
        )
    out.sort(key=lambda p: (-p.cpu_percent, -p.cpu_seconds, p.pid))
    return tuple(out)
