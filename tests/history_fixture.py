"""Writes tests/data/history-schema1.db: twenty frames of tests/fake_frames as today's
recorder stores them. Committed once; test_history_store reads it to prove history written by
schema 1 stays readable as the schema grows. Run again only to add a fixture for a new
format, never to refresh this one: python -m tests.history_fixture"""

import dataclasses
from pathlib import Path

from obs_tui.history.recorder import Recorder
from obs_tui.history.store import FILE_NAME, Store
from tests import fake_frames

FIXTURE = Path(__file__).parent / "data" / "history-schema1.db"
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
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(write(Path(tmp)), FIXTURE)
    print(FIXTURE)
