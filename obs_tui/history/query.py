"""Questions asked of a history store: a window's totals, and what the store holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obs_tui.history.store import FILE_NAME, Store, StoreError, gaps
from obs_tui.history.window import in_window, middle, window_document


class NoHistory(Exception):
    """Nothing recorded where it was asked for: one line for the user."""


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def held(store: Store) -> str:
    chunks = store.chunks()
    if not chunks:
        return "the history is empty"
    return f"history holds {_when(chunks[0].start)} .. {_when(chunks[-1].end)}"


def window_at(
    store: Store, start: float, seconds: float, notice: Callable[[str], None] = lambda line: None
) -> dict[str, Any]:
    """The `snapshot --json` document of [start, start + seconds) from history."""
    end = start + seconds
    # a frame's tick may reach back an interval before its middle; one more frame before the
    # window gives the cumulative counters to subtract
    span = [(t, d) for t, d in store.frames(start - 120.0, end + 120.0, notice)]
    frames = in_window(span, start, end)
    if not frames:
        raise NoHistory(f"no frames recorded between {_when(start)} and {_when(end)} ({held(store)})")
    first = frames[0][0]
    before = [(t, d) for t, d in span if t < first and middle(t, d) < start]
    return window_document(frames, before[-1] if before else None, start, end)


def describe(store: Store, now: float) -> dict[str, Any]:
    """Where the store is, what it holds and where its gaps are (for doctor)."""
    chunks = store.chunks()
    found = gaps(chunks)
    out: dict[str, Any] = {
        "path": str(store.path),
        "size_bytes": store.size_bytes(),
        "frames": sum(c.frames for c in chunks),
        "chunks": len(chunks),
        "oldest": None,
        "newest": None,
        "hours": 0.0,
        "gaps": [],
        "writer": store.writer(),
    }
    if chunks:
        span = chunks[-1].end - chunks[0].start
        missing = sum(g.end - g.start for g in found)
        out.update(
            oldest=chunks[0].start,
            newest=chunks[-1].end,
            hours=round(max(span - missing, 0.0) / 3600, 3),
            newest_age_s=round(now - chunks[-1].end, 1),
            gaps=[{"from": g.start, "to": g.end, "seconds": round(g.end - g.start, 1)} for g in found],
        )
    return out


def frames_between(
    store: Store, start: float, end: float, notice: Callable[[str], None] = lambda line: None
) -> list[tuple[float, dict]]:
    frames = list(store.frames(start, end, notice))
    if not frames:
        raise NoHistory(f"no frames recorded between {_when(start)} and {_when(end)} ({held(store)})")
    return frames


def describe_dir(directory: Path, now: float) -> dict[str, Any]:
    """describe() of the store in `directory`, or where it would be and why it cannot be read."""
    try:
        store = Store(directory)
    except StoreError as exc:
        return {"path": str(directory / FILE_NAME), "error": str(exc)}
    try:
        return describe(store, now)
    finally:
        store.close()


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def render_text(info: dict[str, Any]) -> str:
    """doctor's history lines."""
    lines = [f"history  {info['path']}"]
    if "error" in info:
        return "\n".join(lines + [f"  not readable: {info['error']}"])
    if not info["frames"]:
        return "\n".join(lines + ["  empty: nothing recorded yet"])
    writer = info.get("writer") or {}
    who = (
        f"recording now ({writer.get('role')}, pid {writer.get('pid')})"
        if writer.get("active")
        else "no one is recording now"
    )
    lines.append(f"  {info['frames']} frames over {info['hours']:.2f} h, {_size(info['size_bytes'])}; {who}")
    lines.append(
        f"  oldest {_when(info['oldest'])}, newest {_when(info['newest'])} ({info['newest_age_s']:.0f} s ago)"
    )
    if info["gaps"]:
        shown = info["gaps"][-5:]
        lines.append(
            f"  {len(info['gaps'])} gap(s): "
            + ", ".join(f"{_when(g['from'])} .. {_when(g['to'])} ({g['seconds']:.0f} s)" for g in shown)
        )
    else:
        lines.append("  no gaps")
    return "\n".join(lines)
