"""How a chunk of frames is held as bytes: pure functions, no I/O.

A chunk is a run of consecutive frames, each a `snapshot --json` document (schema 1). Every
KEY_EVERY-th document is stored whole; the others as a patch against the one before, since
from one second to the next most of a host stays the same (idle processes, quiet routes).
The patches are JSON, one line a frame (ChunkEncoder), and the chunk is one zstd frame with
a content checksum, so a chunk cut short or altered on disk fails to decode instead of
yielding wrong numbers.

A patch is a JSON object with exactly one key:
  {"v": value}                      replace the value
  {"d": {key: patch}, "x": [keys]}  a dict: patch these keys, drop "x"; inside "d" a bare
                                    number, string, boolean or null is that key's new value
                                    (the common case, a counter that moved, without a wrapper)
  {"a": [delta, ...]}               a list of integers, each moved by its delta (cumulative
                                    counters and histogram buckets: small numbers)
  {"l": [item, ...]}                a list, built item by item from the previous one:
      ["r", i, n]    copy previous[i:i+n] unchanged
      ["p", i, patch]  previous[i], patched
      ["n", value]   a new item
List items that are objects are matched by identity fields (pid, name, method, route, ...),
so a process appearing or leaving does not turn every later row into a change.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import zstandard

CODEC = "jsondelta+zstd/4"
# /1: every new value wrapped as {"v": value}; /2: no "a" patches; /3: one JSON object, not lines
CODECS = ("jsondelta+zstd/1", "jsondelta+zstd/2", "jsondelta+zstd/3", CODEC)
KEY_EVERY = 15
LEVEL = 3
# Fields that name a row rather than measure it, in the order they are tried.
IDENTITY = ("pid", "name", "method", "route", "status", "severity", "long", "short")


class CorruptChunk(Exception):
    """The chunk's bytes do not decode (truncated, altered, or an unknown codec)."""


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _identity_of(sample: Any) -> Callable[[Any], Any]:
    """How the rows of a list are named, from one of its rows (a list's rows share their
    fields): a function from a row to its identity, None for a row without one."""
    keys = tuple(k for k in IDENTITY if k in sample) if isinstance(sample, dict) else ()
    if not keys:
        return lambda item: None
    if len(keys) == 1:
        key = keys[0]
        return lambda item: item.get(key) if type(item) is dict else None
    return lambda item: tuple(map(item.get, keys)) if type(item) is dict else None


def _bare(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def diff(prev: Any, cur: Any) -> dict | None:
    """The patch that turns prev into cur, or None when they are equal."""
    if isinstance(prev, dict) and isinstance(cur, dict):
        if prev == cur:  # most rows of a second are as they were: compared in C
            return None
        changed = {}
        for key, value in cur.items():
            if key in prev:
                sub = diff(prev[key], value)
                if sub is not None:
                    changed[key] = value if "v" in sub and _bare(value) else sub
            else:
                changed[key] = value if _bare(value) else {"v": value}
        gone = [key for key in prev if key not in cur]
        if not changed and not gone:
            return None
        patch: dict[str, Any] = {"d": changed}
        if gone:
            patch["x"] = gone
        return patch
    if isinstance(prev, list) and isinstance(cur, list):
        return _diff_list(prev, cur)
    return None if _same(prev, cur) else {"v": cur}


def _ints(values: list) -> bool:
    return all(type(v) is int for v in values)


def _diff_list(prev: list, cur: list) -> dict | None:
    if prev == cur:
        return None
    if len(prev) == len(cur) and _ints(cur) and _ints(prev):
        return {"a": [c - p for c, p in zip(cur, prev)]}
    if all(_bare(v) for v in cur):  # ports, names: the new list is shorter than any patch
        return {"v": cur}
    _identity = _identity_of(cur[0] if cur else None)
    by_identity: dict[Any, list[int]] = {}
    for index, item in enumerate(prev):
        key = _identity(item)
        if key is not None:
            by_identity.setdefault(key, []).append(index)
    used: set[int] = set()
    items: list[list] = []
    for at, item in enumerate(cur):
        key = _identity(item)
        i: int | None
        if key is not None:
            candidates = by_identity.get(key)
            i = candidates.pop(0) if candidates else None
        else:  # plain values and rows without identity: the same place in the list
            i = at if at < len(prev) and at not in used else None
        if i is None:
            items.append(["n", item])
            continue
        used.add(i)
        sub = diff(prev[i], item)
        if sub is not None:
            items.append(["p", i, sub])
        elif items and items[-1][0] == "r" and items[-1][1] + items[-1][2] == i:
            items[-1][2] += 1
        else:
            items.append(["r", i, 1])
    if len(items) == 1 and items[0] == ["r", 0, len(prev)] and len(prev) == len(cur):
        return None
    if not prev and not cur:
        return None
    return {"l": items}


def apply(prev: Any, patch: dict | None) -> Any:
    """prev with the patch applied (prev itself is not changed)."""
    if patch is None:
        return prev
    if "v" in patch:
        return patch["v"]
    if "d" in patch:
        if not isinstance(prev, dict):
            raise CorruptChunk("a dict patch over a value that is not an object")
        out = dict(prev)
        for key in patch.get("x", ()):
            out.pop(key, None)
        for key, sub in patch["d"].items():
            out[key] = apply(prev.get(key), sub) if isinstance(sub, dict) else sub
        return out
    if "a" in patch:
        if not isinstance(prev, list) or len(prev) != len(patch["a"]):
            raise CorruptChunk("a counter patch over a list of another length")
        return [p + d for p, d in zip(prev, patch["a"])]
    if "l" in patch:
        if not isinstance(prev, list):
            raise CorruptChunk("a list patch over a value that is not a list")
        out_list: list = []
        for item in patch["l"]:
            kind = item[0]
            if kind == "r":
                out_list.extend(prev[item[1] : item[1] + item[2]])
            elif kind == "p":
                out_list.append(apply(prev[item[1]], item[2]))
            elif kind == "n":
                out_list.append(item[1])
            else:
                raise CorruptChunk(f"unknown list item {kind!r}")
        return out_list
    raise CorruptChunk(f"unknown patch {sorted(patch)!r}")


ERRORS = (zstandard.ZstdError, ValueError, KeyError, TypeError, IndexError, AttributeError)


class ChunkEncoder:
    """Frames of one chunk as they arrive. `encode()` may be called at any time (the open
    chunk is written every few seconds) and again later.

    The body is lines: the first holds every frame's time and tick length, then one line a
    frame, each a patch against the frame before except every KEY_EVERY-th, stored whole as
    {"k": document}. A reader wanting one frame parses one whole frame and at most
    KEY_EVERY - 1 patches, not the chunk; the whole frames cost little once compressed, since
    zstd finds most of each in the one before it."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._durations: list[float] = []
        self._parts: list[str] = []
        self._last: dict | None = None
        self._compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)

    def __len__(self) -> int:
        return len(self.times)

    def add(self, taken_at: float, doc: dict) -> None:
        whole = len(self.times) % KEY_EVERY == 0
        part = {"k": doc} if whole else diff(self._last, doc)
        self._parts.append(json.dumps(part, separators=(",", ":")))
        self.times.append(taken_at)
        self._durations.append(float(doc.get("duration_s") or 0.0))
        self._last = doc

    def encode(self) -> bytes:
        head = json.dumps({"t": self.times, "d": self._durations}, separators=(",", ":"))
        return self._compressor.compress("\n".join([head, *self._parts]).encode())


def encode_chunk(frames: list[tuple[float, dict]]) -> bytes:
    encoder = ChunkEncoder()
    for taken_at, doc in frames:
        encoder.add(taken_at, doc)
    return encoder.encode()


class Chunk:
    """A decompressed chunk whose frames are parsed when asked for (`doc(i)`), from the
    nearest whole frame before them; the last one asked for is kept, so reading forward
    applies one patch a frame."""

    def __init__(
        self,
        times: list[float],
        durations: list[float],
        lines: list[str] | None,
        docs: list[dict] | None = None,
    ) -> None:
        self.times = times
        self.durations = durations
        self._lines = lines
        self._docs = docs  # older codecs: every frame decoded at once
        self._at: tuple[int, dict] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.times)

    def middle(self, i: int) -> float:
        return self.times[i] - self.durations[i] / 2

    def doc(self, i: int) -> dict:
        if self._docs is not None:
            return self._docs[i]
        assert self._lines is not None
        with self._lock:  # the kept frame moves: one reader at a time (replay reads in threads)
            return self._doc(i)

    def _doc(self, i: int) -> dict:
        assert self._lines is not None
        try:
            if self._at is not None and self._at[0] <= i and i - self._at[0] < KEY_EVERY:
                at, doc = self._at
            else:
                at = i - i % KEY_EVERY
                doc = json.loads(self._lines[at])["k"]
            for j in range(at + 1, i + 1):
                part = json.loads(self._lines[j])
                doc = part["k"] if isinstance(part, dict) and "k" in part else apply(doc, part)
        except CorruptChunk:
            raise
        except ERRORS as exc:
            raise CorruptChunk(f"frame {i}: {type(exc).__name__}: {exc}") from None
        self._at = (i, doc)
        return doc

    def frames(self) -> list[tuple[float, dict]]:
        return [(t, self.doc(i)) for i, t in enumerate(self.times)]


def open_chunk(data: bytes, codec: str = CODEC) -> Chunk:
    """The chunk's times at once, its frames on demand; CorruptChunk when its bytes do not
    decompress (checksum) or its frames and times disagree."""
    if codec not in CODECS:
        raise CorruptChunk(f"unknown codec {codec!r}")
    try:
        raw = zstandard.ZstdDecompressor().decompress(data)
        if codec != CODEC:
            return _old_chunk(json.loads(raw))
        lines = raw.decode().split("\n")
        head = json.loads(lines[0])
        times, durations = head["t"], head["d"]
        if not times or len(times) != len(lines) - 1 or len(durations) != len(times):
            raise CorruptChunk("frame count and times disagree")
    except CorruptChunk:
        raise
    except ERRORS as exc:
        raise CorruptChunk(f"{type(exc).__name__}: {exc}") from None
    return Chunk(times, durations, lines[1:])


def _old_chunk(body: dict) -> Chunk:
    """/1../3: one JSON object, the first frame whole and every other a patch."""
    times, parts = body["t"], body["f"]
    if len(times) != len(parts) or not parts:
        raise CorruptChunk("frame count and times disagree")
    docs = [parts[0]]
    for patch in parts[1:]:
        docs.append(apply(docs[-1], patch))
    return Chunk(times, [float(d.get("duration_s") or 0.0) for d in docs], None, docs)


def decode_chunk(data: bytes, codec: str = CODEC) -> list[tuple[float, dict]]:
    """(taken_at, document) for every frame of the chunk; CorruptChunk when it cannot."""
    return open_chunk(data, codec).frames()
