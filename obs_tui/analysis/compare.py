"""What changed between two frames: per service or process, rps, error %, p99, watts and
g/h then and now, biggest movers first. Pure: two Frames in, rows out."""

from __future__ import annotations

from dataclasses import dataclass

from obs_tui.model import Frame

# metric -> the change that counts as one unit of "moved" (below it, noise)
METRICS = (("rps", 1.0), ("err_pct", 1.0), ("p99_ms", 5.0), ("watts", 0.5), ("g_per_h", 0.1))


@dataclass(frozen=True)
class Change:
    key: int | str  # pid, or the service name in read-only mode
    name: str
    then: tuple[float | None, ...]  # in METRICS order; None: not measured for this row then
    now: tuple[float | None, ...]
    score: float  # the largest change in units of METRICS, for the ordering

    def delta(self, i: int) -> float | None:
        a, b = self.then[i], self.now[i]
        return None if a is None and b is None else (b or 0.0) - (a or 0.0)


def _rows(frame: Frame) -> dict[int | str, tuple[str, list[float | None]]]:
    rows: dict[int | str, tuple[str, list[float | None]]] = {}

    def row(key: int | str, name: str) -> list[float | None]:
        if key not in rows:
            rows[key] = (name, [None] * len(METRICS))
        return rows[key][1]

    if frame.red is not None:
        for s in frame.red.services:
            values = row(s.key, s.comm)
            values[0], values[1], values[2] = s.rps, 100.0 * s.error_ratio, s.p99_ms
    if frame.power is not None:
        for p in frame.power.processes:
            row(p.pid, p.comm)[3] = p.watts
    if frame.carbon is not None:
        for c in frame.carbon.processes:
            row(c.pid, c.comm)[4] = c.g_per_h
    return rows


def compare(then: Frame, now: Frame, limit: int | None = None) -> list[Change]:
    """Rows of either frame, sorted by how much they moved (new and gone rows move by
    everything they measure); the first `limit` of them."""
    before, after = _rows(then), _rows(now)
    out = []
    for key in before.keys() | after.keys():
        name = (after.get(key) or before[key])[0]
        a = tuple(before[key][1]) if key in before else (None,) * len(METRICS)
        b = tuple(after[key][1]) if key in after else (None,) * len(METRICS)
        score = max(abs((y or 0.0) - (x or 0.0)) / unit for (_, unit), x, y in zip(METRICS, a, b))
        out.append(Change(key, name, a, b, score))
    out.sort(key=lambda c: (-c.score, str(c.name), str(c.key)))
    return out if limit is None else out[:limit]
