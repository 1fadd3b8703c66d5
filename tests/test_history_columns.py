"""The column codec (cols+zstd/2, and /1 before it): every frame of a chunk comes back as the exact
`snapshot --json` document of the Frame recorded, whatever moved between frames."""

import dataclasses
import json
import random

import pytest

from obs_tui.history import columns
from obs_tui.history.codec import CorruptChunk
from obs_tui.history.columns import (
    CHECKPOINT_EVERY,
    CODEC,
    V1,
    ChunkEncoder,
    decode_chunk,
    encode_chunk,
    open_chunk,
)
from obs_tui.model import RequestSeries
from obs_tui.snapshot import frame_to_json
from tests import fake_frames

replace = dataclasses.replace


def churned(i: int, rng: random.Random):
    """A full frame with what a real host does between seconds: processes start and exit,
    rows reorder against the analysis' sort, a section goes away and comes back, two rows
    share a name, a value changes type."""
    frame = replace(fake_frames.full_frame(i), taken_at=fake_frames.T0 + i, duration_s=1.0)
    procs = list(frame.processes)
    procs += [replace(procs[-1], pid=50_000 + k, comm=f"job{k}") for k in range(i % 5)]  # come and go
    if i % 3 == 0:
        procs.reverse()  # not the analysis' sort
    if i % 4 == 1:
        procs.append(procs[0])  # one pid twice
    procs[1] = replace(procs[1], cpu_seconds=float(10**18 + i), rss_bytes=2**70 + i)  # past exact floats
    power = frame.power
    power = replace(
        power,
        processes=tuple(
            replace(p, watts=round(rng.uniform(0, 3), rng.choice((1, 6))) if rng.random() < 0.6 else 0.0)
            for p in power.processes
        ),
    )
    red = frame.red
    if i % 6 == 2:
        red = None  # the probe detached for a tick
    elif red is not None:
        svc = red.services[0]
        series = tuple(svc.series) + (
            RequestSeries("GET", "/x", 200 + i % 2, i, i * 0.25, tuple(range(i % 3))),
        )
        svc = replace(svc, series=series, p99_ms=i if i % 2 else float(i), status_classes=(("2xx", i),))
        red = replace(red, services=(svc, *red.services[1:]))
    carbon = None if i % 7 == 5 else frame.carbon
    return replace(frame, processes=tuple(procs), power=power, red=red, carbon=carbon)


@pytest.fixture(scope="module")
def frames():
    rng = random.Random(13)
    return [churned(i, rng) for i in range(40)]


def test_every_frame_comes_back_exactly_in_any_order(frames):
    data = encode_chunk(frames)
    want = [frame_to_json(f) for f in frames]
    assert decode_chunk(data) == [(f.taken_at, doc) for f, doc in zip(frames, want)]
    rng = random.Random(1)
    order = list(range(len(frames)))
    rng.shuffle(order)
    chunk = open_chunk(data)
    for i in order + [39, 0, 38, 1]:
        assert chunk.doc(i) == want[i], i


def test_stepping_back_goes_on_from_a_kept_state_exactly(frames):
    """A decoded chunk keeps its state every CHECKPOINT_EVERY frames: reading backwards
    (the `[` key) goes on from the nearest one, and each frame is still the one recorded."""
    want = [frame_to_json(f) for f in frames]
    chunk = open_chunk(encode_chunk(frames))
    assert chunk.doc(len(frames) - 1) == want[-1]
    kept = list(range(CHECKPOINT_EVERY - 1, len(frames), CHECKPOINT_EVERY))
    assert sorted(chunk._checkpoints) == kept and kept
    for i in reversed(range(len(frames))):
        assert chunk.doc(i) == want[i], i
        assert chunk._at == i
    assert chunk.doc(kept[-1] + 1) == want[kept[-1] + 1]


def test_a_table_that_appears_after_the_first_frame(frames):
    late = [replace(f, red=None, carbon=None) for f in frames[:3]] + frames[3:10]
    assert decode_chunk(encode_chunk(late)) == [(f.taken_at, frame_to_json(f)) for f in late]


def test_an_off_frame_and_an_empty_one():
    frames = [fake_frames.off_frame(0), replace(fake_frames.off_frame(1), processes=())]
    assert decode_chunk(encode_chunk(frames)) == [(f.taken_at, frame_to_json(f)) for f in frames]


def test_the_same_frames_cost_little(frames):
    """Frames that do not change add almost nothing: the cells are unchanged (0) and the
    order is "as before"."""
    one = len(encode_chunk(frames[:1]))
    still = [replace(frames[0], taken_at=frames[0].taken_at + k) for k in range(60)]
    assert len(encode_chunk(still)) < one * 1.2


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],
        lambda b: b[:10] + b"\0" + b[11:],
        lambda b: b"",
    ],
)
def test_damaged_chunks_raise_corrupt_chunk(frames, damage):
    with pytest.raises(CorruptChunk):
        decode_chunk(damage(encode_chunk(frames[:5])))


def test_a_chunk_whose_parts_disagree_is_corrupt(frames):
    import json

    import zstandard

    body = json.loads(zstandard.ZstdDecompressor().decompress(encode_chunk(frames[:5])))
    body["tables"]["processes"]["n"].pop()
    data = zstandard.ZstdCompressor(write_checksum=True).compress(json.dumps(body).encode())
    with pytest.raises(CorruptChunk, match="processes"):
        open_chunk(data, CODEC)


def _within_rounding(got, want, path="doc"):
    """got equals want field by field, floats within the document's rounding (six decimals,
    with a derived figure rounded once more)."""
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        assert abs(got - want) <= 2e-6 + 1e-9 * abs(want), path
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), path
        for key in want:
            _within_rounding(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            _within_rounding(g, w, f"{path}[{i}]")
    else:
        assert got == want and type(got) is type(want), path


def test_carbon_rows_are_derived_on_read_as_the_live_ones():
    """cols+zstd/2 does not store the carbon rows the analysis makes from the power rows: a
    replayed document equals the live one field by field, the carbon rows' floats within
    their rounding and everything else exactly."""
    import json

    import zstandard

    frames = [
        replace(fake_frames.full_frame(i), taken_at=fake_frames.T0 + i, duration_s=1.0) for i in range(30)
    ]
    data = encode_chunk(frames)
    body = json.loads(zstandard.ZstdDecompressor().decompress(data))
    assert body["cd"] == [1] * 30 and "carbon" not in body["tables"]  # not stored
    chunk = open_chunk(data, CODEC)
    for i in (0, 17, 29, 3):
        live, got = frame_to_json(frames[i]), chunk.doc(i)
        assert live["carbon"]["processes"]  # something to derive
        _within_rounding(got, live)
        live["carbon"].pop("processes"), got["carbon"].pop("processes")
        assert got == live  # the rest exactly


def test_carbon_rows_are_stored_when_they_are_not_the_power_rows(frames):
    """A frame whose carbon rows are not the analysis' own of its power rows (here: power
    rows changed after the join) keeps them as they were."""
    import json

    import zstandard

    body = json.loads(zstandard.ZstdDecompressor().decompress(encode_chunk(frames)))
    assert 0 in body["cd"] and "carbon" in body["tables"]


def test_the_previous_codec_still_writes_and_reads_exactly(frames):
    """bench/history.py encodes the same frames with cols+zstd/1 beside /2."""
    encoder = ChunkEncoder(V1)
    for frame in frames:
        encoder.add(frame)
    data = encoder.encode(final=True)
    assert decode_chunk(data, V1) == [(f.taken_at, frame_to_json(f)) for f in frames]


# The recorder's and the reader's column-at-a-time paths against the cell-at-a-time rules
# they stand for (columns._change, _changed, sort_slots): the same cells, values and orders
# whatever a column holds, so the chunks written stay those of the format.
COLUMNS = {
    "floats": ([0.5, 1.25, 3.000001, -2.0, 0.0], [0.75, 1.25, 3.000002, -0.0, 1e-06]),
    "floats past millionths": ([0.1 + 0.2, 1.5], [0.3, 2.5]),
    "huge floats": ([1e300, 2.0], [1e301, 3.0]),
    "inf and nan": ([float("inf"), 1.0], [float("nan"), 2.0]),
    "ints": ([1, 2, 10**30], [1, 5, 10**30 + 7]),
    "ints and floats": ([1, 2.5], [1.0, 3]),
    "bools": ([True, False], [False, False]),
    "strings": (["a", "b"], ["a", "c"]),
    "none": ([None, 1.0], [2.0, None]),
    "lists of ints": ([[1, 2, 3], [4], [], [1, 2]], [[1, 2, 4], [4], [], [1, 2, 3]]),
    "lists with bools": ([[1, True]], [[1, False]]),
    "counts by key": ([{"2xx": 1, "5xx": 2}, {"2xx": 3}, {}], [{"2xx": 4, "5xx": 2}, {"4xx": 3}, {}]),
    "counts by key, not ints": ([{"2xx": 1.5}], [{"2xx": 2.5}]),
}


@pytest.mark.parametrize("name", COLUMNS)
@pytest.mark.parametrize("change", [columns._change, columns._change_v1], ids=["v2", "v1"])
def test_a_column_at_once_gives_the_cells_cell_by_cell(name, change):
    prevs, news = COLUMNS[name]
    cells = columns._changes(change, prevs, news)
    want = list(map(change, prevs, news))
    assert json.dumps(cells) == json.dumps(want)  # types too: 0 is not 0.0
    # and back: the reader's column of values from the cells that are not 0
    back = [(p, c) for p, c in zip(prevs, cells) if c]
    got = columns._changed_all([p for p, _ in back], [c for _, c in back])
    assert json.dumps(got) == json.dumps([columns._changed(p, c) for p, c in back])


@pytest.mark.parametrize("seed", range(6))
def test_the_sort_by_key_tuples_is_sort_slots(seed):
    """The recorder's one sort of key tuples orders a table's rows (and a child table's,
    under their parents) exactly as sort_slots, which the reader uses; with ties, -0.0,
    and columns where it must step aside (None, NaN, strings sorted descending)."""
    rng = random.Random(seed)
    frames = [replace(fake_frames.full_frame(i), taken_at=fake_frames.T0 + i) for i in range(3)]
    encoder = ChunkEncoder()
    for frame in frames:
        encoder.add(frame)
    for table in encoder._tables.values():
        slots = sorted(table.present)
        pick = [0.0, -0.0, 1.0, 1.0, 2.5, 3, rng.random()]
        if seed == 3:
            pick.append(float("nan"))
        if seed == 4:
            pick.append(None)
        for slot in slots:
            row = table.values[slot]
            for i, _ in table.sort:
                if type(row[i]) in (int, float) and rng.random() < 0.7:
                    row[i] = rng.choice(pick)
                elif seed == 5 and isinstance(row[i], str):
                    row[i] = rng.choice(["a", "b", "b"])
        if seed == 5:
            table.sort = [(i, True) for i, _ in table.sort]  # strings sorted descending
        parent = encoder._tables[table.of].order if table.of else ()
        order = list(table.order)
        rng.shuffle(order)
        try:
            want = columns.sort_slots(order, table.sort, table.values, table.parent_slots, parent)
        except (TypeError, KeyError):
            want = []
        assert table._sorted(order, parent) == want, table.name


@pytest.mark.slow
def test_real_process_tables_come_back_exactly():
    """Frames of this host's real process table (a real engine reading /proc, processes
    started and ended between ticks, CPU ticks that tie once rounded), recorded and read
    back: each is exactly the document snapshot --json prints for it."""
    import subprocess
    import time

    from obs_tui.config import parse
    from obs_tui.pipeline import make_engine

    engine = make_engine(parse("interval = 0.2\n"), read_only=True, with_slos=False)
    frames, children = [], []
    try:
        for i in range(12):
            if i % 3 == 0:
                children.append(subprocess.Popen(["sleep", "0.5"]))
            frames.append(engine.tick())
            time.sleep(0.2)
    finally:
        engine.close()
        for child in children:
            child.kill()
            child.wait()
    assert len(frames[-1].processes) > 10
    encoder = ChunkEncoder()
    for frame in frames:
        encoder.add(frame)
    want = [(f.taken_at, frame_to_json(f)) for f in frames]
    assert decode_chunk(encoder.encode(final=True)) == want


def test_the_sort_kept_from_frame_to_frame_is_the_one_sort():
    """A table of the frame with few rows changing (most processes idle): its sorted keys are
    kept and mended frame to frame (rows that moved, came and went), and are at every frame
    exactly _sorted's one sort of all the rows, ties, ints among floats, and a NaN
    (which sends it back to sort_slots) included; every frame decodes exactly."""
    rng = random.Random(7)
    base = fake_frames.full_frame(0)
    idle = [
        replace(
            base.processes[-1], pid=60_000 + k, comm=f"idle{k}", cpu_seconds=float(k % 5), cpu_percent=0.0
        )
        for k in range(150)
    ]
    frames = []
    for i in range(30):
        procs = list(idle)
        for _ in range(6):  # a few move: some tie, some become ints
            k = rng.randrange(len(procs))
            pct = rng.choice([0.0, 1.5, 1.5, 3, rng.random()])
            procs[k] = replace(procs[k], cpu_percent=pct, cpu_seconds=procs[k].cpu_seconds + 1.0)
            idle[k] = procs[k]
        if i % 4 == 1:
            procs.pop(rng.randrange(len(procs)))  # one goes for a frame, then comes back
        if i == 17:
            procs[3] = replace(procs[3], cpu_percent=float("nan"))
        procs.sort(key=lambda p: (-p.cpu_percent, -p.cpu_seconds, p.pid))
        frames.append(replace(base, processes=tuple(procs), taken_at=fake_frames.T0 + i, duration_s=1.0))
    encoder = ChunkEncoder()
    kept = 0
    for frame in frames:
        table = encoder._tables.get("processes")
        before = table._ranked if table is not None else None
        encoder.add(frame)
        table = encoder._tables["processes"]
        kept += before is not None and table._ranked is before
        if table._ranked is not None:
            assert [key[-1] for key in table._ranked] == table._sorted(table.order, ())
    assert kept >= 20
    back = decode_chunk(encoder.encode(final=True))
    same = json.dumps([(f.taken_at, frame_to_json(f)) for f in frames], sort_keys=True)  # NaN == NaN
    assert json.dumps(back, sort_keys=True) == same
