"""The chunk codec and the document reader: pure functions, no I/O."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obs_tui.history.codec import CorruptChunk, apply, decode_chunk, diff, encode_chunk
from obs_tui.history.document import frame_from_json
from obs_tui.history.timeparse import parse_time
from obs_tui.snapshot import frame_to_json
from tests import fake_frames

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
rows = st.fixed_dictionaries(
    {"pid": st.integers(1, 6)}, optional={"comm": st.text(max_size=3), "watts": st.floats(0, 10)}
)
documents = st.recursive(
    scalars | rows,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from("abcpid"), inner, max_size=4),
    max_leaves=30,
)


@given(documents, documents)
@settings(max_examples=300)
def test_apply_of_diff_gives_the_new_document(a, b):
    """Equal as Python compares values (1 == 1.0 inside a row: a field of the recorded
    documents keeps its type from one frame to the next)."""
    patch = diff(a, b)
    assert apply(a, patch) == b
    assert patch is not None or a == b


@given(st.lists(documents, min_size=1, max_size=8))
def test_a_chunk_decodes_to_its_frames(docs):
    frames = [(1000.0 + i, {"doc": d}) for i, d in enumerate(docs)]
    assert decode_chunk(encode_chunk(frames)) == frames


def test_rows_matched_by_identity_not_place():
    before = [{"pid": p, "w": 1.0} for p in range(1, 200)]
    after = [{"pid": 0, "w": 2.0}] + before  # a new process in front: one new row, one run
    patch = diff(before, after)
    assert patch == {"l": [["n", {"pid": 0, "w": 2.0}], ["r", 0, 199]]}


def test_ints_and_floats_are_not_confused():
    assert apply(1, diff(1, 1.0)) == 1.0 and isinstance(apply(1, diff(1, 1.0)), float)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],
        lambda b: b[:10] + b"\0" + b[11:],
        lambda b: b"",
        lambda b: b"not zstd at all",
    ],
)
def test_damaged_chunks_raise_corrupt_chunk(damage):
    data = encode_chunk([(1.0, frame_to_json(fake_frames.full_frame(i))) for i in range(3)])
    with pytest.raises(CorruptChunk):
        decode_chunk(damage(data))


def test_unknown_codec_is_corrupt():
    with pytest.raises(CorruptChunk, match="unknown codec"):
        decode_chunk(encode_chunk([(1.0, {})]), "lz4/9")


@pytest.mark.parametrize("frame", [fake_frames.full_frame(3), fake_frames.off_frame(1)])
def test_document_back_to_the_same_frame(frame):
    doc = frame_to_json(frame)
    back = frame_from_json(doc, frame.taken_at)
    assert frame_to_json(back) == doc
    assert back.processes[0].cmdline == frame.processes[0].cmdline
    assert back.red is None or back.red.services[0].routes[0] == frame.red.services[0].routes[0]


def test_a_grown_or_older_document_still_reads():
    """Schema 1 grows by adding fields: a document with fields this model has not (written
    later) or without fields it has (written earlier) still makes a Frame."""
    doc = frame_to_json(fake_frames.full_frame(2))
    doc["fleet"] = {"hosts": []}
    doc["red"]["services"][0]["deps"] = [{"peer": "db"}]
    del doc["red"]["services"][0]["paths"], doc["power"]["busy_ratio"], doc["processes"][0]["user"]
    frame = frame_from_json(doc)
    assert frame.red.services[0].paths == 0 and frame.power.busy_ratio == 0.0
    assert frame.processes[0].user == "" and frame.red.services[0].comm == "nginx"


NOW = 1_764_424_800.0  # 2025-11-29 14:00:00 UTC (tests run with TZ=UTC)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("now", NOW),
        ("-10m", NOW - 600),
        ("-1h30m", NOW - 5400),
        ("-90s", NOW - 90),
        ("-2d", NOW - 172800),
        ("13:05", NOW - 3300),
        ("13:05:12", NOW - 3288),
        ("14:30", NOW - 86400 + 1800),
        ("2025-11-29T13:00:00Z", NOW - 3600),
        ("2025-11-29T15:00:00+02:00", NOW - 3600),
        ("2025-11-29T13:00:00", NOW - 3600),
        ("2025-11-29 13:00", NOW - 3600),
    ],
)
def test_times_as_typed(text, expected):
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "25:00", "-10x", "14:5", "10m"])
def test_bad_times_name_the_forms(text):
    with pytest.raises(ValueError, match="14:05"):
        parse_time(text, NOW)


def test_any_frame_of_a_long_chunk_reads_alone_in_any_order():
    from obs_tui.history.codec import KEY_EVERY, open_chunk

    frames = [(float(i), frame_to_json(fake_frames.full_frame(i))) for i in range(2 * KEY_EVERY + 5)]
    data = encode_chunk(frames)
    for order in (range(len(frames)), reversed(range(len(frames))), [33, 2, 17, 16, 31, 0]):
        chunk = open_chunk(data)
        for i in order:
            assert chunk.doc(i) == frames[i][1]
