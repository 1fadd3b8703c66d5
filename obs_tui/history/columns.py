"""The chunk encoding "cols+zstd/1": a chunk's frames as tables whose columns run through time.

Most of a frame's bytes are its tables (the process table, power and carbon per process, the
services with their routes and latency series), and from one second to the next most of their
rows are as they were, and most numbers that move are counters that move a little. So each
table is kept as slots (one per row identity: pid, method and route, ...) and, each frame,
only the rows that changed are written, each cell as the change since that slot's previous
value: 0 when it is the same, the difference for an integer or a float of at most six
decimals (the snapshot document's precision: a float is held as an integer of millionths,
exactly), or `[value]` for anything else (a new row, a string, a type that changed). Cells
are stored column by column across the chunk, so zstd sees runs of like numbers; the order of
a table's rows is written only when it changed. What is not in a table (the sections' own
figures, capabilities, SLOs) is the snapshot document's remainder, patched frame to frame
with codec.diff.

The encoder reads the Frame's dataclasses directly (one tuple per row, compared in C with the
slot's previous one), never building the whole document: that is what makes recording cheap.
The decoder gives back the `snapshot --json` document (schema 1) of any frame, exactly as
snapshot.frame_to_json writes it (key order inside a row aside), from the chunk's start: the
state of the last frame asked for is kept, so reading forward costs one frame's changes.

The chunk names its tables' columns, so a chunk written before a field existed decodes
without it (document.py fills the default) and one written after decodes with it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from itertools import compress
from operator import attrgetter, ne
from typing import Any

import zstandard

from obs_tui.history import codec
from obs_tui.model import Frame
from obs_tui.snapshot import MAPPING_FIELDS, frame_to_json, plain

CODEC = "cols+zstd/1"
LEVEL = 6
SCALE = 1e6  # the snapshot document rounds floats to six decimals
_EXACT = 2**53


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One table of a frame: where its rows are, what names a row, and its child tables (a
    service's routes and series), whose rows are named by their parent's slot and their own
    identity."""

    name: str
    path: tuple[str, ...]  # where the rows are in the document
    rows: Callable[[Any], Sequence[Any]]  # from the Frame (or the parent row for a child)
    identity: tuple[str, ...]
    children: tuple[TableSpec, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()  # how the analysis orders the rows: (column, descending)


def _section(name: str, field: str) -> Callable[[Frame], Sequence[Any]]:
    def rows(frame: Frame) -> Sequence[Any]:
        section = getattr(frame, name)
        return () if section is None else getattr(section, field)

    return rows


BY_ROUTE = (("requests", True), ("method", False), ("route", False))
TABLES = (
    TableSpec(
        "processes",
        ("processes",),
        attrgetter("processes"),
        ("pid",),
        sort=(("cpu_percent", True), ("cpu_seconds", True), ("pid", False)),
    ),
    TableSpec(
        "power",
        ("power", "processes"),
        _section("power", "processes"),
        ("pid",),
        sort=(("watts", True), ("joules", True), ("pid", False)),
    ),
    TableSpec(
        "carbon",
        ("carbon", "processes"),
        _section("carbon", "processes"),
        ("pid",),
        sort=(("watts", True), ("grams", True), ("pid", False)),
    ),
    TableSpec(
        "services",
        ("red", "services"),
        _section("red", "services"),
        ("pid", "comm"),
        (
            TableSpec("routes", ("routes",), attrgetter("routes"), ("method", "route"), sort=BY_ROUTE),
            TableSpec(
                "routes_total",
                ("routes_total",),
                attrgetter("routes_total"),
                ("method", "route"),
                sort=BY_ROUTE,
            ),
            TableSpec(
                "series",
                ("series",),
                attrgetter("series"),
                ("method", "route", "status", "scheme"),
                sort=(("method", False), ("route", False), ("status", False), ("scheme", False)),
            ),
        ),
        sort=(("requests", True), ("pid", False)),
    ),
)


def sort_key(
    sort: Sequence[Sequence[Any]], values: Any, parents: Sequence[int], parent_order: Sequence[int]
) -> Callable[[int], tuple]:
    """A slot's place in its table's sort (a child's: under its parent, in the parent's order)."""
    where = {slot: i for i, slot in enumerate(parent_order)}

    def key(slot: int) -> tuple:
        row = values[slot]
        own = tuple(-row[i] if descending else row[i] for i, descending in sort)
        return (where[parents[slot]], *own) if where else own

    return key


def _strip(frame: Frame) -> Frame:
    """The frame without its tables' rows: what the remainder document is made of."""
    replace = dataclasses.replace
    return replace(
        frame,
        processes=(),
        red=None if frame.red is None else replace(frame.red, services=()),
        power=None if frame.power is None else replace(frame.power, processes=()),
        carbon=None if frame.carbon is None else replace(frame.carbon, processes=()),
    )


def _micro(x: float) -> int | None:
    """x as an integer of millionths when that is exactly x, else None."""
    try:
        m = round(x * SCALE)
    except (OverflowError, ValueError):
        return None
    return m if -_EXACT < m < _EXACT and m / SCALE == x else None


def _change(prev: Any, new: Any) -> Any:
    """A cell: 0 (unchanged), an integer difference, or [new]."""
    kind = type(new)
    if kind is type(prev):
        if kind is int:
            return new - prev
        if kind is float:
            a, b = _micro(prev), _micro(new)
            if a is not None and b is not None:
                return b - a
        if new == prev:
            return 0
    return [new]


def _changed(prev: Any, cell: Any) -> Any:
    """The reverse of _change."""
    if type(cell) is list:
        return cell[0]
    if not cell:
        return prev
    if type(prev) is float:
        return (round(prev * SCALE) + cell) / SCALE
    return prev + cell


class _TableEncoder:
    def __init__(self, spec: TableSpec, row_type: type, of: str) -> None:
        self.spec = spec
        self.of = of  # the parent table's name, "" for a table of the frame
        self.is_child = bool(of)
        child_fields = {c.path[0] for c in spec.children}
        fields = [f.name for f in dataclasses.fields(row_type)]
        self.fields = fields
        self.cols = [name for name in fields if name not in child_fields]
        self.row = attrgetter(*self.cols)
        self.ident = attrgetter(*spec.identity)
        self.plain = [
            (lambda pairs: {k: plain(v) for k, v in pairs}) if name in MAPPING_FIELDS else plain
            for name in self.cols
        ]
        self.slots: dict[Any, int] = {}
        self.parents: list[int] = []
        self.raw: list[tuple | None] = []
        self.values: list[list | None] = []
        self.order: list[int] | None = None
        # per frame: how many rows changed, their slots, their cells per column, the order
        self.counts: list[int] = []
        self.changed_slots: list[str] = []
        self.cells: list[list[str]] = [[] for _ in self.cols]
        self.orders: list[str] = []
        self.sort = [(self.cols.index(name), descending) for name, descending in spec.sort]

    def _slots(self, keys: list[Any], parents: Sequence[int] | None) -> list[int]:
        """The slot of each row, new slots for new names; a name twice in one frame: the later
        row gets a slot of its own."""
        slots = self.slots
        order = list(map(slots.get, keys))
        if None not in order and len(set(order)) == len(order):
            return order  # type: ignore[return-value]
        order = []
        seen: set[Any] = set()
        for at, key in enumerate(keys):
            if key in seen:
                key = (key, at)
            seen.add(key)
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = len(self.raw)
                self.raw.append(None)
                self.values.append(None)
                if parents is not None:
                    self.parents.append(parents[at])
            order.append(slot)
        return order  # type: ignore[return-value]

    def add(
        self, rows: Sequence[Any], parents: Sequence[int] | None = None, parent_order: Sequence[int] = ()
    ) -> list[int]:
        """One frame's rows (of every parent, in order, for a child table); their slots."""
        keys: list[Any] = list(map(self.ident, rows))
        if parents is not None:
            keys = list(zip(parents, keys))
        raws = list(map(self.row, rows))
        order = self._slots(keys, parents)
        raw_of, values, plain_of = self.raw, self.values, self.plain
        befores = list(map(raw_of.__getitem__, order))
        changed = sorted(compress(zip(order, raws, befores), map(ne, befores, raws)))
        columns: list[list[Any]] = [[] for _ in self.cols]
        slots: list[int] = []
        last = 0
        for slot, raw, before in changed:
            raw_of[slot] = raw
            prev = values[slot]
            if prev is None:
                now = [convert(v) for convert, v in zip(plain_of, raw)]
                cells: list[Any] = [[v] for v in now]
            else:
                now = list(prev)
                cells = [0] * len(now)
                for i, (x, y) in enumerate(zip(before or (), raw)):
                    if x != y:
                        now[i] = plain_of[i](y)
                        cells[i] = _change(prev[i], now[i])
            values[slot] = now
            slots.append(slot - last)  # ascending: the gaps are small numbers
            last = slot
            for column, cell in zip(columns, cells):
                column.append(cell)
        dumps = json.dumps
        self.counts.append(len(slots))
        if slots:
            self.changed_slots.append(dumps(slots, separators=(",", ":"))[1:-1])
            for pieces, column in zip(self.cells, columns):
                pieces.append(dumps(column, separators=(",", ":"))[1:-1])
        self.orders.append(self._order(order, parent_order))
        return order

    def _order(self, order: list[int], parent_order: Sequence[int]) -> str:
        """The frame's order of rows: "null" when as before; else, for a table the analysis
        sorts by its own columns, the rows come ("a") and gone ("g") and the places ("x": place,
        offset) where the order differs from that sort of the stored values (rounded to six
        decimals, they can tie where the measured values did not); else the slots."""
        before = self.order
        if order == before:
            return "null"
        self.order = order
        if self.sort:
            now, was = set(order), set(before or ())
            try:
                guess = sorted(now, key=sort_key(self.sort, self.values, self.parents, parent_order))
            except TypeError:  # a None among the sorted columns
                guess = []
            if len(guess) == len(order):
                place = {slot: i for i, slot in enumerate(guess)}
                fixes = [(i, place[slot] - i) for i, slot in enumerate(order) if place[slot] != i]
                if 2 * len(fixes) < len(order):
                    entry = {
                        "a": sorted(now - was),
                        "g": sorted(was - now),
                        "x": [x for f in fixes for x in f],
                    }
                    return json.dumps(entry, separators=(",", ":"))
        return json.dumps(order, separators=(",", ":"))

    def text(self) -> str:
        head = {
            "path": list(self.spec.path),
            "fields": self.fields,
            "cols": self.cols,
            "of": self.of,
            "parents": self.parents,
            "n": self.counts,
            "sort": self.sort,
        }
        return (
            json.dumps(head, separators=(",", ":"))[:-1]
            + ',"s":['
            + ",".join(self.changed_slots)
            + '],"c":['
            + ",".join("[" + ",".join(pieces) + "]" for pieces in self.cells)
            + '],"o":['
            + ",".join(self.orders)
            + "]}"
        )


class ChunkEncoder:
    """Frames of one chunk as they arrive (`add(frame)`); `encode()` may be called at any time
    (the open chunk is written every few seconds) and again later."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._durations: list[float] = []
        self._rest: list[str] = []
        self._last_rest: dict | None = None
        self._tables: dict[str, _TableEncoder] = {}
        self._compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)

    def __len__(self) -> int:
        return len(self.times)

    def _add_rows(
        self, spec: TableSpec, rows: Sequence[Any], parents: Sequence[int] | None, of: str = ""
    ) -> None:
        table = self._tables.get(spec.name)
        if table is None:
            if not rows:
                return
            table = self._tables[spec.name] = _TableEncoder(spec, type(rows[0]), of)
            table.counts = [0] * len(self.times)  # a table that appears late: empty before
            table.orders = ["[]"] * len(self.times)
            table.order = []
        parent_order = self._tables[of].order or () if of else ()
        order = table.add(rows, parents, parent_order)
        for child in spec.children:
            child_rows: list[Any] = []
            child_parents: list[int] = []
            for slot, row in zip(order, rows):
                got = child.rows(row)
                child_rows.extend(got)
                child_parents.extend([slot] * len(got))
            self._add_rows(child, child_rows, child_parents, spec.name)

    def add(self, frame: Frame) -> None:
        n = len(self.times)
        for spec in TABLES:
            self._add_rows(spec, spec.rows(frame), None)
        for table in self._tables.values():
            if len(table.counts) == n:  # no rows this frame (its section or parent is gone)
                table.add((), [] if table.is_child else None)
        rest = frame_to_json(_strip(frame))
        part = {"k": rest} if self._last_rest is None else codec.diff(self._last_rest, rest)
        self._rest.append(json.dumps(part, separators=(",", ":")))
        self._last_rest = rest
        self.times.append(frame.taken_at)
        self._durations.append(round(frame.duration_s, 3))

    def encode(self) -> bytes:
        text = (
            json.dumps({"t": self.times, "d": self._durations}, separators=(",", ":"))[:-1]
            + ',"r":['
            + ",".join(self._rest)
            + '],"tables":{'
            + ",".join(f'"{name}":{table.text()}' for name, table in self._tables.items())
            + "}}"
        )
        return self._compressor.compress(text.encode())


class _TableDecoder:
    def __init__(self, name: str, body: dict, frames: int) -> None:
        self.name = name
        self.path: list[str] = body["path"]
        self.fields: list[str] = body["fields"]
        self.cols: list[str] = body["cols"]
        self.of: str = body["of"]
        self.parents: list[int] = body["parents"]
        self.counts: list[int] = body["n"]
        self.slots: list[int] = body["s"]
        self.orders: list[list[int] | dict | None] = body["o"]
        self.sort: list[list[Any]] = body["sort"]
        columns: list[list[Any]] = body["c"]
        if len(self.counts) != frames or len(self.orders) != frames or sum(self.counts) != len(self.slots):
            raise codec.CorruptChunk(f"table {name}: its frames and rows disagree")
        if len(columns) != len(self.cols) or any(len(c) != len(self.slots) for c in columns):
            raise codec.CorruptChunk(f"table {name}: its columns and rows disagree")
        self.cells = list(zip(*columns)) if self.slots else []
        self.reset()

    def reset(self) -> None:
        self.values: dict[int, list] = {}
        self.order: list[int] = []
        self.at = 0  # the next changed row to apply

    def step(self, frame: int, parent_order: Sequence[int]) -> None:
        values, cells, slots = self.values, self.cells, self.slots
        end = self.at + self.counts[frame]
        slot = 0
        for p in range(self.at, end):
            slot += slots[p]
            prev = values.get(slot)
            if prev is None:
                values[slot] = [cell[0] for cell in cells[p]]
            else:
                values[slot] = [_changed(a, c) for a, c in zip(prev, cells[p])]
        self.at = end
        order = self.orders[frame]
        if isinstance(order, dict):
            now = (set(self.order) - set(order["g"])) | set(order["a"])
            guess = sorted(now, key=sort_key(self.sort, values, self.parents, parent_order))
            fixes = order["x"]
            self.order = list(guess)
            for i in range(0, len(fixes), 2):
                self.order[fixes[i]] = guess[fixes[i] + fixes[i + 1]]
        elif order is not None:
            self.order = order

    def rows(self) -> list[dict]:
        cols, values = self.cols, self.values
        return [dict(zip(cols, values[slot])) for slot in self.order]


class ColumnChunk:
    """A decompressed chunk whose frames are rebuilt when asked for (`doc(i)`), from its start;
    the state of the last one asked for is kept, so reading forward applies one frame's changes."""

    def __init__(self, body: dict) -> None:
        self.times: list[float] = body["t"]
        self.durations: list[float] = body["d"]
        self._rest: list[dict] = body["r"]
        frames = len(self.times)
        if not frames or len(self.durations) != frames or len(self._rest) != frames:
            raise codec.CorruptChunk("frame count and times disagree")
        self._tables = [_TableDecoder(name, t, frames) for name, t in body["tables"].items()]
        self._reset()

    def __len__(self) -> int:
        return len(self.times)

    def middle(self, i: int) -> float:
        return self.times[i] - self.durations[i] / 2

    def _reset(self) -> None:
        self._at = -1
        self._doc: dict = {}
        for table in self._tables:
            table.reset()

    def _step(self) -> None:
        self._at += 1
        part = self._rest[self._at]
        self._doc = part["k"] if isinstance(part, dict) and "k" in part else codec.apply(self._doc, part)
        by_name = {t.name: t for t in self._tables}
        for table in self._tables:
            table.step(self._at, by_name[table.of].order if table.of else ())

    def doc(self, i: int) -> dict:
        if not 0 <= i < len(self.times):
            raise IndexError(i)
        try:
            if i < self._at:
                self._reset()
            while self._at < i:
                self._step()
            return self._build()
        except codec.CorruptChunk:
            raise
        except codec.ERRORS as exc:
            self._reset()
            raise codec.CorruptChunk(f"frame {i}: {type(exc).__name__}: {exc}") from None

    def _build(self) -> dict:
        doc = dict(self._doc)
        rows = {t.name: t.rows() for t in self._tables}
        for table in self._tables:
            if table.of:
                continue
            mine = rows[table.name]
            children = [t for t in self._tables if t.of == table.name]
            if children:
                by_slot = dict(zip(table.order, mine))
                for row in mine:
                    for child in children:
                        row[child.path[0]] = []
                for child in children:
                    field = child.path[0]
                    for slot, row in zip(child.order, rows[child.name]):
                        by_slot[child.parents[slot]][field].append(row)
                fields = table.fields
                mine = [{k: row[k] for k in fields if k in row} for row in mine]
            _put(doc, table.path, mine)
        return doc

    def frames(self) -> list[tuple[float, dict]]:
        return [(t, self.doc(i)) for i, t in enumerate(self.times)]


Decoded = ColumnChunk | codec.Chunk  # a chunk open for reading, whichever codec wrote it


def _put(doc: dict, path: list[str], rows: list[dict]) -> None:
    """doc with rows at path, copying (not changing) the dicts on the way, which are shared
    with the chunk's other frames."""
    if len(path) == 1:
        doc[path[0]] = rows
        return
    section = doc.get(path[0])
    if isinstance(section, dict):
        doc[path[0]] = {**section, path[1]: rows}


def open_chunk(data: bytes, name: str = CODEC) -> Decoded:
    """The chunk's times at once, its frames on demand, whichever codec wrote it;
    CorruptChunk when its bytes do not decompress (checksum) or do not fit together."""
    if name != CODEC:
        return codec.open_chunk(data, name)
    try:
        return ColumnChunk(json.loads(zstandard.ZstdDecompressor().decompress(data)))
    except codec.CorruptChunk:
        raise
    except codec.ERRORS as exc:
        raise codec.CorruptChunk(f"{type(exc).__name__}: {exc}") from None


def encode_chunk(frames: Sequence[Frame]) -> bytes:
    encoder = ChunkEncoder()
    for frame in frames:
        encoder.add(frame)
    return encoder.encode()


def decode_chunk(data: bytes, name: str = CODEC) -> list[tuple[float, dict]]:
    """(taken_at, document) for every frame of the chunk; CorruptChunk when it cannot."""
    return open_chunk(data, name).frames()
