"""Recorded frames as a timeline to move along: the frame at a time, n ticks away, the frames
before one (for sparklines), and where the recording has data and gaps. Replay is one more
source of Frames: what this returns is the same Frame a live engine makes.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from obs_tui.history.codec import CorruptChunk
from obs_tui.history.columns import Decoded
from obs_tui.history.document import frame_from_json
from obs_tui.history.store import Chunk, Store, gaps
from obs_tui.model import Frame

# Decoded chunks kept: the one shown and its neighbours (a step, the sparklines' minute before
# it). No more: each holds tens of thousands of objects that every full pass of the garbage
# collector walks, and those passes run inside the next seek.
CACHED_CHUNKS = 3
INDEX_TTL_S = 2.0


def label_time(frame: Frame) -> float:
    """The middle of the tick a frame measured, whose second is the one it describes: a tick
    that began a little before a whole second (a late tick on a busy host) is labelled by the
    second it mostly measured, the same rule by which frame_at finds it."""
    return frame.taken_at - frame.duration_s / 2


class Timeline:
    def __init__(
        self,
        store: Store,
        notice: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.notice = notice
        self.clock = clock
        self._chunks: list[Chunk] = []
        self._indexed = float("-inf")
        self._decoded: OrderedDict[int, Decoded] = OrderedDict()
        self._bar: tuple[tuple, float, str] | None = None  # (chunks and width, now, line)

    def chunks(self) -> list[Chunk]:
        if self.clock() - self._indexed > INDEX_TTL_S:
            self._chunks = self.store.chunks()
            self._indexed = self.clock()
        return self._chunks

    def span(self) -> tuple[float, float] | None:
        chunks = self.chunks()
        return (chunks[0].start, chunks[-1].end) if chunks else None

    def _open(self, i: int) -> Decoded | None:
        chunk = self.chunks()[i]
        have = self._decoded.get(chunk.id)
        if have is None or len(have) < chunk.frames:  # the open chunk grows
            have = self.store.open(chunk.id, self.notice)
            if have is None:
                return None
            self._decoded[chunk.id] = have
            while len(self._decoded) > CACHED_CHUNKS:
                self._decoded.popitem(last=False)
        self._decoded.move_to_end(chunk.id)
        return have

    def _frame(self, chunk: Decoded, at: int) -> Frame | None:
        try:
            return frame_from_json(chunk.doc(at), chunk.times[at])
        except CorruptChunk as exc:
            self.notice(f"history: {exc}")
            return None

    def _chunk_at(self, t: float) -> int | None:
        """The index of the first chunk that ends at or after t (the last one if none do)."""
        chunks = self.chunks()
        if not chunks:
            return None
        return min(bisect.bisect_left([c.end for c in chunks], t), len(chunks) - 1)

    def frame_at(self, t: float) -> Frame | None:
        """The first frame whose middle is at or after t, else the last one: with ticks on
        whole seconds (the agent's), 14:05:12 finds the tick that measured that second; the
        same rule as the windows of `snapshot --at` (window.py)."""
        i = self._chunk_at(t)
        if i is None:
            return None
        last = len(self.chunks()) - 1
        while True:
            chunk = self._open(i)
            for at in range(len(chunk) if chunk is not None else 0):
                assert chunk is not None
                if chunk.middle(at) >= t:
                    return self._frame(chunk, at)
            if i == last:
                break
            i += 1
        for j in range(last, -1, -1):  # t is past every middle: the newest frame there is
            chunk = self._open(j)
            if chunk is not None and len(chunk):
                return self._frame(chunk, len(chunk) - 1)
        return None

    def step(self, frame: Frame, ticks: int) -> Frame | None:
        """The frame `ticks` recorded ticks after (or before, negative) `frame`; the first or
        last recorded one when that runs off the end."""
        i = self._chunk_at(frame.taken_at)
        if i is None:
            return None
        last = len(self.chunks()) - 1
        chunk = self._open(i)
        at = (bisect.bisect_left(chunk.times, frame.taken_at - 1e-6) if chunk else 0) + ticks
        while at < 0 and i > 0:
            i -= 1
            chunk = self._open(i)
            at += len(chunk) if chunk else 0
        while at >= (len(chunk) if chunk else 0) and i < last:
            at -= len(chunk) if chunk else 0
            i += 1
            chunk = self._open(i)
        if not chunk:
            return None
        return self._frame(chunk, min(max(at, 0), len(chunk) - 1))

    def frames_before(self, frame: Frame, count: int) -> Iterator[Frame]:
        """Up to `count` recorded frames ending with `frame`, oldest first, each made when
        asked for (a reader that moves on stops early)."""
        i = self._chunk_at(frame.taken_at)
        found: list[tuple[Decoded, int]] = []  # newest first
        while i is not None and i >= 0 and len(found) < count:
            chunk = self._open(i)
            if chunk is not None:
                found.extend(
                    (chunk, at) for at in reversed(range(len(chunk))) if chunk.times[at] <= frame.taken_at
                )
            i -= 1
        for chunk, at in reversed(found[:count]):
            made = self._frame(chunk, at)
            if made is not None:
                yield made

    def bar(self, width: int, at: float, now: float) -> str:
        """A line of markup `width` cells wide from the oldest frame to now: recorded time as
        a line, gaps as blanks, the frame shown as a marker. The line is made again only when
        the chunks or the width changed, or now moved the cells by half of one: it is drawn
        at every seek and every live tick."""
        chunks = self.chunks()
        if not chunks or width < 10:
            return ""
        start = chunks[0].start
        span = max(now - start, 1.0)
        # the list is read again every INDEX_TTL_S, most often the same chunks
        held = (len(chunks), chunks[0].id, chunks[-1].id, chunks[-1].end, width)
        made = self._bar
        if made is None or made[0] != held or abs(now - made[1]) * width > span / 2:
            made = self._bar = (held, now, _bar_line(chunks, width, start, span))
        line = made[2]
        marker = min(max(int((at - start) / span * width), 0), width - 1)
        return f"[$success]{line[:marker]}[/][reverse b]▼[/][$success]{line[marker + 1 :]}[/]"


def _bar_line(chunks: list[Chunk], width: int, start: float, span: float) -> str:
    cells = [" "] * width

    def cell(t: float) -> int:
        return min(max(int((t - start) / span * width), 0), width - 1)

    for chunk in chunks:
        first, last = cell(chunk.start), cell(chunk.end)
        cells[first : last + 1] = "━" * (last - first + 1)
    for gap in gaps(chunks):
        first, last = cell(gap.start) + 1, cell(gap.end)
        if last > first:
            cells[first:last] = " " * (last - first)
    return "".join(cells)
