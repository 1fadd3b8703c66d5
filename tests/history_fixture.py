"""Writes tests/data/history-schema1.db: twenty frames of tests/fake_frames as the recorder
stores them. Committed once per chunk codec (history-schema1.db: jsondelta+zstd/4;
history-cols1.db: cols+zstd/1; history-cols2.db: cols+zstd/2); test_history_store reads them
to prove history written by schema 1 and each codec stays readable as the schema and the
codecs change. Run again only to add a fixture for a new codec, never to refresh one:
python -m tests.history_fixture NAME"""

import dataclasses
from pathlib import Path

from obs_tui.history.recorder import Recorder
from obs_tui.history.store import FILE_NAME, Store
from tests import fake_frames

FIXTURE = Path(__file__).parent / "data" / "history-schema1.db"
FIXTURES = (FIXTURE, FIXTURE.with_name("history-cols1.db"), FIXTURE.with_name("history-cols2.db"))
FRAMES = 20


def write(directory: Path) -> Path:
    store = Store(directory, writer=True)
    tick = [0.0]
    recorder = Recorder(store, "fixture", clock=lambda: tick[0])
    for i in range(FRAMES):
        tick[0] = float(i)
        recorder(
            dataclasses.replace(
                fake_frames.full_frame(i), taken_at=fake_frames.T0 + i, duration_s=1.0 if i else 0.0
            )
        )
    recorder.close()
    store.close()
    return directory / FILE_NAME


if __name__ == "__main__":
    import shutil
    import sys
    import tempfile

    target = FIXTURE.with_name(f"{sys.argv[1]}.db")
    if target.exists():
        sys.exit(f"{target} exists: a fixture is written once")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(write(Path(tmp)), target)
    print(target)
