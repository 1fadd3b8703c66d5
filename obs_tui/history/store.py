"""The history store: one SQLite file (WAL) of frame chunks under the history directory.

SQLite is the container because it is one file, crash-safe with WAL, and readable by any
tool; the frames inside a chunk are codec.py's business. One writer at a time holds an
exclusive lock on `history.lock` beside the file for as long as it records; the kernel drops
the lock when the writer dies, even by kill -9, so a console can tell whether an agent is
recording here right now (and then only reads). The file holds command lines: the directory
is 0700 and the file 0600, owned by whoever records (root for the agent).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from obs_tui.history import columns
from obs_tui.history.codec import CorruptChunk
from obs_tui.history.columns import CODEC

FILE_NAME = "history.db"
LOCK_NAME = "history.lock"
SYSTEM_DIR = "/var/lib/obs-tui/history"
MAX_AGE_S = 7 * 86400
MAX_BYTES = 1 << 30
FORMAT = 1  # the container's own layout (tables); the documents carry their schema

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    start REAL NOT NULL,      -- taken_at of the first frame
    end REAL NOT NULL,        -- taken_at of the last frame
    frames INTEGER NOT NULL,
    interval REAL NOT NULL,   -- the recording engine's tick interval
    schema INTEGER NOT NULL,  -- the snapshot schema of the documents
    codec TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_end ON chunks (end);
"""


class StoreError(Exception):
    """The history directory or file cannot be used: one line for the user."""


def default_dir(environ=os.environ) -> Path:
    """$OBS_TUI_HISTORY when set; else root records system-wide, a user under their XDG state
    directory."""
    if environ.get("OBS_TUI_HISTORY"):
        return Path(environ["OBS_TUI_HISTORY"])
    if os.geteuid() == 0:
        return Path(SYSTEM_DIR)
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "obs-tui" / "history"


@dataclass(frozen=True)
class Chunk:
    id: int
    start: float
    end: float
    frames: int
    interval: float
    size: int


@dataclass(frozen=True)
class Gap:
    start: float  # the last frame before it
    end: float  # the first frame after it


def gaps(chunks: list[Chunk]) -> list[Gap]:
    """Where recording stopped: more than two intervals (and a second) between chunks."""
    out = []
    for prev, cur in zip(chunks, chunks[1:]):
        if cur.start - prev.end > 2 * max(prev.interval, cur.interval) + 1.0:
            out.append(Gap(prev.end, cur.start))
    return out


class Store:
    """One history file. `writer=True` creates what is missing and tries to take the writer's
    lock (`recording` says whether it has it); `writer=False` only reads."""

    def __init__(self, directory: Path | str, writer: bool = False) -> None:
        self.dir = Path(directory)
        self.path = self.dir / FILE_NAME
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self.recording = False
        try:
            if writer:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
                self._lock_fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
                self.take_lock()
            elif not self.path.is_file():
                raise StoreError(f"{self.path}: no history recorded here")
            can_write = os.access(self.path, os.W_OK) and os.access(self.dir, os.W_OK)
            uri = f"file:{self.path}?mode={'rw' if can_write else 'ro'}"
            self.conn = sqlite3.connect(
                uri, uri=True, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            if writer:
                # auto_vacuum must be chosen before the first table: freed chunks then give
                # their pages back to the file system, so retention by size shrinks the file.
                self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(_TABLES)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT),))
            self.conn.execute("PRAGMA temp_store=MEMORY")
            self.conn.execute("SELECT count(*) FROM chunks").fetchone()
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise StoreError(f"history {self.path}: {exc}") from None

    # ---- the writer's lock and heartbeat ----------------------------------------------------

    def take_lock(self) -> bool:
        """True when this store now holds (or already held) the writer's lock."""
        if self.recording:
            return True
        if self._lock_fd is None:
            return False
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.recording = True
        return True

    def heartbeat(self, role: str, now: float) -> None:
        self._write(
            "INSERT OR REPLACE INTO meta VALUES ('writer', ?)",
            (json.dumps({"pid": os.getpid(), "role": role, "at": now}),),
        )

    def writer(self) -> dict | None:
        """The last writer's pid, role and heartbeat time, and whether it still holds the lock."""
        row = self._read("SELECT value FROM meta WHERE key='writer'")
        if not row:
            return None
        info = json.loads(row[0][0])
        info["active"] = self.recording or writer_active(self.dir)
        return info

    # ---- chunks -------------------------------------------------------------------------------

    def put_chunk(
        self,
        chunk_id: int | None,
        start: float,
        end: float,
        frames: int,
        interval: float,
        schema: int,
        data: bytes,
    ) -> int:
        """Write a chunk, or rewrite the open one (chunk_id), in one transaction."""
        if chunk_id is None:
            cur = self._write(
                "INSERT INTO chunks (start, end, frames, interval, schema, codec, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (start, end, frames, interval, schema, CODEC, data),
            )
            assert cur.lastrowid is not None  # an INSERT always has one
            return cur.lastrowid
        self._write("UPDATE chunks SET end=?, frames=?, data=? WHERE id=?", (end, frames, data, chunk_id))
        return chunk_id

    def chunks(self, start: float = float("-inf"), end: float = float("inf")) -> list[Chunk]:
        """Chunks holding frames in [start, end], oldest first."""
        rows = self._read(
            "SELECT id, start, end, frames, interval, length(data) FROM chunks "
            "WHERE end >= ? AND start <= ? ORDER BY start",
            (start, end),
        )
        return [Chunk(*row) for row in rows]

    def frames(
        self, start: float, end: float, notice: Callable[[str], None] = lambda line: None
    ) -> Iterator[tuple[float, dict]]:
        """(taken_at, document) of every frame in [start, end], oldest first. A chunk that
        does not decode is skipped with a notice."""
        for chunk in self.chunks(start, end):
            for taken_at, doc in self.decode(chunk.id, notice):
                if start <= taken_at <= end:
                    yield taken_at, doc

    def decode(
        self, chunk_id: int, notice: Callable[[str], None] = lambda line: None
    ) -> list[tuple[float, dict]]:
        chunk = self.open(chunk_id, notice)
        if chunk is None:
            return []
        try:
            return chunk.frames()
        except CorruptChunk as exc:
            self._skipped(chunk_id, chunk.times[0], exc, notice)
            return []

    def open(
        self, chunk_id: int, notice: Callable[[str], None] = lambda line: None
    ) -> columns.Decoded | None:
        """The chunk with its frames decoded on demand; None (and a notice) when damaged."""
        rows = self._read("SELECT codec, data, start FROM chunks WHERE id=?", (chunk_id,))
        if not rows:
            return None
        name, data, start = rows[0]
        try:
            return columns.open_chunk(data, name)
        except CorruptChunk as exc:
            self._skipped(chunk_id, start, exc, notice)
            return None

    @staticmethod
    def _skipped(chunk_id: int, start: float, exc: Exception, notice: Callable[[str], None]) -> None:
        notice(
            f"history: skipped the chunk at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(start))}"
            f" (id {chunk_id}): {exc}"
        )

    def prune(self, now: float, max_age_s: float = MAX_AGE_S, max_bytes: int = MAX_BYTES) -> int:
        """Drop chunks older than max_age_s, then the oldest until the chunks fit in
        max_bytes; returns how many went."""
        dropped = 0
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                dropped += conn.execute("DELETE FROM chunks WHERE end < ?", (now - max_age_s,)).rowcount
                total = conn.execute("SELECT coalesce(sum(length(data)), 0) FROM chunks").fetchone()[0]
                if total > max_bytes:
                    cut, over = None, total - max_bytes
                    for chunk_id, size in conn.execute("SELECT id, length(data) FROM chunks ORDER BY start"):
                        over -= size
                        cut = chunk_id
                        if over <= 0:
                            break
                    start = conn.execute("SELECT start FROM chunks WHERE id=?", (cut,)).fetchone()[0]
                    dropped += conn.execute("DELETE FROM chunks WHERE start <= ?", (start,)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            # the pages of dropped chunks, and of the open chunk's earlier writes, go back
            conn.execute("PRAGMA incremental_vacuum")
        return dropped

    def size_bytes(self) -> int:
        """The file, its WAL and shared-memory index, as they are on disk."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except OSError:
                pass
        return total

    # ---- plumbing -----------------------------------------------------------------------------

    def _write(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self.conn.execute(sql, args)

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, args).fetchall()

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass
            self.conn = None  # type: ignore[assignment]
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None
            self.recording = False


def writer_active(directory: Path | str) -> bool:
    """Whether some process holds the writer's lock of the store in `directory` right now."""
    try:
        fd = os.open(Path(directory) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
