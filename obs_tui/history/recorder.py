"""The recorder: an engine sink that writes every Frame to the history store.

Frames collect in an open chunk that is written (rewritten in place) every FLUSH_S seconds,
so a writer killed with kill -9 loses at most the frames of the last FLUSH_S; a chunk is
closed after CHUNK_S seconds (or CHUNK_FRAMES frames) and the next starts with a whole
frame, which bounds what a reader must decode to reach any second, and what one corrupt
chunk can take away. Retention runs each time a chunk closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from obs_tui.history.columns import ChunkEncoder
from obs_tui.history.store import MAX_AGE_S, MAX_BYTES, Store
from obs_tui.model import Frame

FLUSH_S = 10.0
CHUNK_S = 60.0
CHUNK_FRAMES = 120


class Recorder:
    def __init__(
        self,
        store: Store,
        role: str,
        max_age_s: float = MAX_AGE_S,
        max_bytes: int = MAX_BYTES,
        flush_s: float = FLUSH_S,
        chunk_s: float = CHUNK_S,
        notice: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.role = role
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.flush_s = flush_s
        self.chunk_s = chunk_s
        self.notice = notice
        self.clock = clock
        self.error = ""  # the last write that failed, "" once writing works again
        self._encoder = ChunkEncoder()
        self._chunk_id: int | None = None
        self._opened = 0.0
        self._flushed = 0.0
        self._interval = 1.0
        self._schema = 1
        self._waiting_said = False
        self._chunk_bytes = 0

    def __call__(self, frame: Frame) -> None:
        if not self.store.take_lock():
            if not self._waiting_said:
                self.notice(
                    f"history: another obs-tui records to {self.store.dir}; this one records when it stops"
                )
                self._waiting_said = True
            return
        now = self.clock()
        if not self._encoder:
            self._opened = self._flushed = now
        if frame.schema != self._schema and self._encoder:
            self._close_chunk()  # one schema per chunk
        self._interval, self._schema = frame.interval_s, frame.schema
        self._encoder.add(frame)
        if now - self._opened >= self.chunk_s or len(self._encoder) >= CHUNK_FRAMES:
            self._close_chunk(frame.taken_at)
        elif now - self._flushed >= self.flush_s:
            self.flush()

    def flush(self, final: bool = False) -> None:
        """Write the open chunk as it is now (`final`: for the last time, compressed harder)."""
        if not self._encoder:
            return
        self._flushed = self.clock()
        times = self._encoder.times
        try:
            data = self._encoder.encode(final)
            self._chunk_bytes = len(data)
            self._chunk_id = self.store.put_chunk(
                self._chunk_id,
                times[0],
                times[-1],
                len(times),
                self._interval,
                self._schema,
                data,
            )
            self.store.heartbeat(self.role, times[-1])
        except Exception as exc:  # a full disk must not stop the engine; say it once
            if not self.error:
                self.notice(f"history: cannot write {self.store.path}: {exc}")
            self.error = str(exc)
            return
        self.error = ""

    def _close_chunk(self, now: float | None = None) -> None:
        self.flush(final=True)
        self._encoder = ChunkEncoder()
        self._chunk_id = None
        if now is not None and not self.error:
            try:
                # room for the chunk that opens now, about the size of the one just closed
                self.store.prune(now, self.max_age_s, max(self.max_bytes - self._chunk_bytes, 0))
            except Exception as exc:
                self.notice(f"history: retention failed on {self.store.path}: {exc}")

    def close(self) -> None:
        if self.store.recording:
            self.flush(final=True)
