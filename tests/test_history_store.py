"""The history store on real SQLite files: retention, damage, kill -9, the writer's lock,
and the stored schema-1 fixture."""

import dataclasses
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from obs_tui.history.document import frame_from_json
from obs_tui.history.query import NoHistory, describe, window_at
from obs_tui.history.recorder import Recorder
from obs_tui.history.store import FILE_NAME, Store, StoreError, writer_active
from obs_tui.snapshot import frame_to_json
from tests import fake_frames
from tests.history_fixture import FIXTURES, FRAMES


def record(directory, seconds, start=fake_frames.T0, chunk_s=10.0, **options):
    """`seconds` frames one second apart, recorded as the recorder would live."""
    store = Store(directory, writer=True)
    tick = [0.0]
    recorder = Recorder(store, "test", clock=lambda: tick[0], chunk_s=chunk_s, flush_s=5.0, **options)
    for i in range(seconds):
        tick[0] = float(i)
        recorder(dataclasses.replace(fake_frames.full_frame(i), taken_at=start + i, duration_s=1.0))
    recorder.close()
    return store


def test_file_and_directory_are_private(tmp_path):
    store = record(tmp_path / "h", 3)
    assert stat.S_IMODE(os.stat(tmp_path / "h").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    with sqlite3.connect(store.path) as conn:  # any SQLite tool reads it
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_frames_come_back_exactly(tmp_path):
    store = record(tmp_path, 35)
    got = list(store.frames(fake_frames.T0 + 10, fake_frames.T0 + 20))
    assert [t - fake_frames.T0 for t, _ in got] == list(range(10, 21))
    frame = frame_from_json(got[0][1], got[0][0])
    want = fake_frames.full_frame(10)
    assert frame.red.services[0].requests == want.red.services[0].requests
    assert frame_to_json(frame)["processes"] == frame_to_json(want)["processes"]
    store.close()


def test_retention_by_age(tmp_path):
    now = time.time()
    store = record(tmp_path, 120, start=now - 3 * 86400 - 60, max_age_s=86400)
    store.close()
    store = record(tmp_path, 30, start=now - 30, max_age_s=86400, chunk_s=10.0)
    chunks = store.chunks()
    assert chunks and chunks[0].start >= now - 86400, "chunks older than a day were kept"
    assert len(list(store.frames(now - 31, now))) == 30
    store.close()


def test_retention_by_size_shrinks_the_file(tmp_path):
    store = record(tmp_path, 600)
    big = store.size_bytes()
    total = sum(c.size for c in store.chunks())
    store.close()
    limit = total // 4
    store = record(tmp_path, 20, start=fake_frames.T0 + 600, max_bytes=limit)
    kept = store.chunks()
    assert sum(c.size for c in kept) <= limit
    assert kept[-1].end == fake_frames.T0 + 619  # the newest are the ones kept
    with store._lock:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert store.size_bytes() < big / 2
    store.close()


def test_a_corrupt_chunk_is_skipped_with_a_notice(tmp_path):
    store = record(tmp_path, 40)
    ids = [c.id for c in store.chunks()]
    with store._lock:  # flip bytes inside the second chunk, cut the third short
        data = store.conn.execute("SELECT data FROM chunks WHERE id=?", (ids[1],)).fetchone()[0]
        store.conn.execute(
            "UPDATE chunks SET data=? WHERE id=?",
            (data[:20] + bytes(b ^ 0xFF for b in data[20:40]) + data[40:], ids[1]),
        )
        store.conn.execute("UPDATE chunks SET data=substr(data, 1, 30) WHERE id=?", (ids[2],))
    notices = []
    got = [t - fake_frames.T0 for t, _ in store.frames(0, 2e9, notices.append)]
    first, second, third = store.chunks()[:3]
    assert got[: first.frames] == list(range(first.frames))
    assert not any(second.start <= fake_frames.T0 + t <= third.end for t in got)
    assert len(notices) == 2 and all("skipped the chunk" in n for n in notices)
    doc = window_at(store, fake_frames.T0, 5)  # a window over good chunks still answers
    assert doc["window"]["frames"] == 5
    store.close()


def test_only_one_writer_records(tmp_path):
    first = Store(tmp_path, writer=True)
    second = Store(tmp_path, writer=True)
    assert first.recording and not second.recording and writer_active(tmp_path)
    first.close()
    assert not writer_active(tmp_path)
    assert second.take_lock() and writer_active(tmp_path)
    second.close()


WRITER = textwrap.dedent("""
    import dataclasses, sys, time
    from obs_tui.history.recorder import Recorder
    from obs_tui.history.store import Store
    from tests import fake_frames
    store = Store(sys.argv[1], writer=True)
    recorder = Recorder(store, "agent", flush_s=1.0, chunk_s=60.0)
    i = 0
    while True:
        recorder(dataclasses.replace(fake_frames.full_frame(i), taken_at=time.time(), duration_s=0.1))
        print(time.time(), flush=True)
        i += 1
        time.sleep(0.1)
""")


def test_kill_9_loses_at_most_the_flush_interval_then_recording_resumes(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    lines = []
    while len(lines) < 35:
        lines.append(float(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    last_written = lines[-1]
    store = Store(tmp_path)
    kept = [t for t, _ in store.frames(0, 2e9)]
    assert kept and last_written - kept[-1] <= 1.0 + 0.2, "more than the flush interval was lost"
    assert not writer_active(tmp_path)  # the kernel let go of the dead writer's lock
    store.close()
    store = record(tmp_path, 5, start=time.time() + 5)  # a restarted writer takes over
    assert store.recording
    info = describe(store, time.time())
    assert info["frames"] == len(kept) + 5 and len(info["gaps"]) == 1
    store.close()


def test_reading_a_missing_store_is_one_line(tmp_path):
    with pytest.raises(StoreError, match="no history recorded here"):
        Store(tmp_path / "none")
    store = record(tmp_path, 5)
    with pytest.raises(NoHistory, match="history holds"):
        window_at(store, fake_frames.T0 + 3600, 10)
    store.close()


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_schema_1_fixtures_stay_readable(tmp_path, fixture):
    """tests/data/history-*.db were written by the schema-1 recorder, one per chunk codec, and
    are never regenerated: whatever the model and the codecs have become since, they read."""
    shutil.copy(fixture, tmp_path / FILE_NAME)
    store = Store(tmp_path)
    frames = list(store.frames(0, 2e9))
    assert len(frames) == FRAMES and frames[0][0] == 1_700_000_000.0
    frame = frame_from_json(frames[5][1], frames[5][0])
    nginx = frame.red.services[0]
    assert (nginx.comm, nginx.requests, nginx.ports) == ("nginx", 1115, (80, 443))
    assert frame.power.host_watts == 21.407 and frame.processes[0].cmdline == "nginx: worker process"
    assert frame.host == "demo-host" and frame.schema == 1
    doc = window_at(store, 1_700_000_000.0, 10)  # the first frame (no window) and nine seconds
    assert doc["window"]["frames"] == 11 and doc["red"]["services"][0]["comm"] == "nginx"
    store.close()
