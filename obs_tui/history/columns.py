"""The chunk encoding "cols+zstd/2": a chunk's frames as tables whose columns run through time.

Most of a frame's bytes are its tables (the process table, power per process, the services
with their routes and latency series), and from one second to the next most of their rows
are as they were, and most numbers that move are counters that move a little. So each table
is kept as slots (one per row identity: pid, method and route, ...) and, each frame, only the
rows that changed are written, each cell as the change since that slot's previous value: 0
when it is the same, the difference for an integer or a float of at most six decimals (the
snapshot document's precision: a float is held as an integer of millionths, exactly), the
differences of a list of integers (histogram buckets) or of counts by key (status classes),
or `[value]` for anything else (a new row, a string, a type that changed). Cells that the
analysis derives from others (a process's watts from its CPU time, its joules and share from
its watts; a service's rps and error ratio) are stored as their difference from that
derivation instead (see PREDICTED), and a process's carbon rows, the analysis' own of its
power rows, are not stored at all: the reader makes them again (carbon_rows). Cells are
stored column by column across the chunk, so zstd sees runs of like numbers. The order of a
table's rows is stored as the rows that came and went when it is the analysis' own sort of
the rows, and in full otherwise. What is not in a table (the sections' own figures,
capabilities, SLOs) is the snapshot document's remainder, patched frame to frame with
codec.diff. "cols+zstd/1" (carbon rows stored, against a prediction) still reads.

The encoder reads the Frame's dataclasses directly (one tuple per row, compared in C with the
slot's previous one), never building the whole document, and works a column at a time: the
cells that moved in a column are made together (all floats or all counters: by C-level maps,
not a call a cell), and so are the predictions and the check of the rows against their sort
(a table's sorted keys are kept from frame to frame and mended by the rows that moved).
That is what makes recording cheap; the decoder steps through a frame's changes the same way.
Each column-at-a-time path gives exactly what its cell-at-a-time rule (_change, _changed,
sort_slots) gives, or hands the column to that rule.
The decoder gives back the `snapshot --json` document (schema 1) of any frame, exactly as
snapshot.frame_to_json writes it (key order inside a row aside), from the chunk's start: the
state of the last frame asked for is kept, so reading forward costs one frame's changes.

The chunk names its tables' columns, so a chunk written before a field existed decodes
without it (document.py fills the default) and one written after decodes with it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import typing
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from itertools import accumulate, chain, compress, repeat
from math import isclose
from operator import add, attrgetter, is_, is_not, itemgetter, mul, ne, neg, sub, truediv
from typing import Any

import zstandard

from obs_tui.analysis.carbon import process_carbon
from obs_tui.analysis.red import error_ratio, rate
from obs_tui.history import codec
from obs_tui.model import Frame, ProcessPower
from obs_tui.snapshot import MAPPING_FIELDS, frame_to_json, plain

CODEC = "cols+zstd/2"
V1 = "cols+zstd/1"  # carbon rows stored (against a prediction), joules predicted over the tick
CODECS = (V1, CODEC)
LEVEL = 9  # a closed chunk, written once
FLUSH_LEVEL = 1  # the open chunk, rewritten every few seconds
SCALE = 1e6  # the snapshot document rounds floats to six decimals
CHECKPOINT_EVERY = 15  # a decoded chunk keeps its state every this many frames
# json.dumps with separators builds an encoder at each call; the recorder calls it ~70 times a frame
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_NUMBERS = {int, float}

Row = dict[str, Any]


class Around:
    """What a table's predicted cells are predicted from, at one frame: the remainder
    document, the frame's exact tick length, and the tables read before this one."""

    def __init__(self, rest: dict, dt: float, tables: dict[str, Any]) -> None:
        self.rest = rest
        self.dt = dt
        self._tables = tables
        self._by_pid: dict[str, dict[Any, Row]] = {}
        self.moved = 0.0  # the table's MOVED column summed over the rows that changed, as they moved

    def by_pid(self, name: str) -> dict[Any, Row]:
        """The rows of a table read before, by pid (of two rows with one pid, the later slot)."""
        rows = self._by_pid.get(name)
        if rows is None:
            table = self._tables.get(name)
            rows = {}
            if table is not None and "pid" in table.cols:
                cols, values = table.cols, table.values
                rows = {
                    r["pid"]: r for r in (dict(zip(cols, values[slot])) for slot in sorted(table.present))
                }
            self._by_pid[name] = rows
        return rows


# A predicted cell is stored as its difference from a value computed the same way on both
# sides from what is known at that frame (the row's other cells, the row before, the tables
# read before it): most derived numbers then cost nothing. The formulas are frozen here, not
# imported from analysis, so a chunk decodes the same whatever analysis becomes (a prediction
# that misses only costs bytes); changing one is a new codec version.
#
# A predictor works on the rows of a table that changed in a frame at once, as columns (name
# -> the rows' values, in the order of the changed rows): `now` and `before` (the row at the
# frame before; NEW in every column of a row that is new), and returns one value a row. Each
# row's value comes from that row alone (and `around`), computed as it would be for the row
# by itself: when a predictor raises, it is asked again row by row, and a row that still
# raises has no prediction (None).
Cols = dict[str, list]
Predictor = Callable[[Cols, Cols, Around], list]
RowPredictor = Callable[[Row, "Row | None", Around], Any]
PREDICTION_ERRORS = (KeyError, TypeError, ZeroDivisionError, AttributeError)


class _New:
    """The value before of a row that is new (NEW): arithmetic with it raises TypeError."""

    def __repr__(self) -> str:
        return "NEW"


NEW = _New()


def _each_row(predict: RowPredictor) -> Predictor:
    """A predictor written for one row (as a dict) at a time."""

    def columns(now: Cols, before: Cols, around: Around) -> list:
        names = list(now)
        out = []
        for values, was in zip(zip(*now.values()), zip(*before.values())):
            prev = None if was and was[0] is NEW else dict(zip(names, was))
            out.append(predict(dict(zip(names, values)), prev, around))
        return out

    return columns


def _grams(joules: float, g_per_kwh: float, pue: float) -> float:
    return joules / 3.6e6 * pue * g_per_kwh


def _carbon(name: str) -> Predictor:
    def predict(row: Row, before: Row | None, around: Around) -> Any:
        power = around.by_pid("power")[row["pid"]]
        section = around.rest["carbon"]
        i, pue = section["grid_g_per_kwh"], section["pue"]
        if name in ("comm", "watts"):
            return power[name]
        if name == "g_per_h":
            return _grams(power["watts"] * 3600.0, i, pue)
        if name == "grams":
            return _grams(power["joules"], i, pue)
        if name == "rps":
            service = around.by_pid("services").get(row["pid"])
            return None if service is None else service["rps"]
        if name == "joules_per_request":
            return row["watts"] / row["rps"] if row["rps"] > 0 else None
        jpr = row["joules_per_request"]  # g_per_1k_requests
        return None if jpr is None else _grams(1000.0 * jpr, i, pue)

    return _each_row(predict)


def _share(now: Cols, before: Cols, around: Around) -> list:
    host = around.rest["power"]["host_watts"]
    return [watts / host for watts in now["watts"]]


def _joules_v1(now: Cols, before: Cols, around: Around) -> list:
    dt = around.dt
    return [None if was is NEW else was + watts * dt for was, watts in zip(before["joules"], now["watts"])]


def _joules(now: Cols, before: Cols, around: Around) -> list:
    """The energy reading's own window, not the tick: energy is read at most once a second."""
    window = around.rest["power"]["window_s"]
    return [
        None if was is NEW else was + watts * window for was, watts in zip(before["joules"], now["watts"])
    ]


def _power_watts(now: Cols, before: Cols, around: Around) -> list:
    """analysis.attribution's split: the host's active watts by the process's share of the
    CPU time every process used in the tick (the power rows' CPU seconds that moved)."""
    power = around.rest["power"]
    active, moved = power["host_watts"] * power["busy_ratio"], around.moved
    return [
        active * (cpu - (0.0 if was is NEW else was)) / moved
        for cpu, was in zip(now["cpu_seconds"], before["cpu_seconds"])
    ]


def _rps(now: Cols, before: Cols, around: Around) -> list:
    return list(map(rate, now["requests"], repeat(around.dt)))  # over the tick, as analysis.red states it


def _error_ratio(now: Cols, before: Cols, around: Around) -> list:
    return list(map(error_ratio, now["errors"], now["requests"]))


def _cpu_percent(now: Cols, before: Cols, around: Around) -> list:
    dt = around.dt
    return [
        None if was is NEW else 100.0 * max(cpu - was, 0.0) / dt
        for cpu, was in zip(now["cpu_seconds"], before["cpu_seconds"])
    ]


Predictions = dict[str, tuple[tuple[str, Predictor], ...]]
# per codec: a chunk is read with the formulas it was written with
PREDICTED: dict[str, Predictions] = {
    V1: {
        "processes": (("cpu_percent", _cpu_percent),),
        "power": (("share", _share), ("joules", _joules_v1)),
        "carbon": tuple(
            (name, _carbon(name))
            for name in (
                "comm",
                "watts",
                "g_per_h",
                "grams",
                "rps",
                "joules_per_request",
                "g_per_1k_requests",
            )
        ),
    },
    # /2: carbon rows are not stored when they are the analysis' own of the power rows
    # (carbon_rows); when they are not, they are stored as they are
    CODEC: {
        "processes": (("cpu_percent", _cpu_percent),),
        "services": (("rps", _rps), ("error_ratio", _error_ratio)),
        "power": (("watts", _power_watts), ("share", _share), ("joules", _joules)),
    },
}
# per codec, per table: the column whose change over the frame's changed rows predictions
# read (Around.moved)
MOVED: dict[str, dict[str, str]] = {V1: {}, CODEC: {"power": "cpu_seconds"}}


def carbon_derivable(frame: Frame) -> bool:
    """Whether the frame's carbon rows are analysis.carbon's of its power rows, its services'
    rps and its carbon section's intensity and PUE (as the engine makes them), so that a
    reader makes them again (carbon_rows) rather than reading them. Checked on what a reader
    has: the rows' pids, names, watts, joules and rps in the power rows' order, and the first
    row whole."""
    carbon, power = frame.carbon, frame.power
    if carbon is None or power is None or len(carbon.processes) != len(power.processes):
        return False
    if not carbon.processes:
        return True
    rps = {s.pid: s.rps for s in frame.red.services} if frame.red is not None else {}
    pids = list(map(_PID, power.processes))
    if not (
        list(map(_PID, carbon.processes)) == pids
        and list(map(_WATTS, carbon.processes)) == list(map(_WATTS, power.processes))
        and list(map(_COMM, carbon.processes)) == list(map(_COMM, power.processes))
        and list(map(_RPS, carbon.processes)) == list(map(rps.get, pids))
    ):
        return False
    first, want = carbon.processes[0], power.processes[0]
    made = process_carbon(want, rps.get(want.pid), carbon.grid_g_per_kwh, carbon.pue)
    # within the document's rounding: a frame read back from history was rounded once
    return all(
        isclose(a, b, rel_tol=1e-9, abs_tol=2e-6) if b is not None and a is not None else a is b
        for a, b in (
            (first.g_per_h, made.g_per_h),
            (first.grams, made.grams),
            (first.joules_per_request, made.joules_per_request),
            (first.g_per_1k_requests, made.g_per_1k_requests),
        )
    )


_PID, _WATTS, _COMM, _RPS = attrgetter("pid"), attrgetter("watts"), attrgetter("comm"), attrgetter("rps")


def carbon_rows(doc: dict) -> list[dict]:
    """The carbon rows of a document whose carbon section holds none (carbon_derivable), by
    analysis.carbon from its power rows, services and intensity: what snapshot.plain made of
    them live, floats within their six decimals (the power rows are read as rounded)."""
    carbon, power, red = doc.get("carbon") or {}, doc.get("power") or {}, doc.get("red")
    i, pue = carbon.get("grid_g_per_kwh", 0.0), carbon.get("pue", 1.0)
    rps = {s["pid"]: s["rps"] for s in red.get("services") or ()} if isinstance(red, dict) else {}
    return [
        plain(
            process_carbon(
                ProcessPower(r["pid"], r["comm"], r["cpu_seconds"], r["watts"], r["joules"]),
                rps.get(r["pid"]),
                i,
                pue,
            )
        )
        for r in power.get("processes") or ()
    ]


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One table of a frame: where its rows are, what names a row, its child tables (a
    service's routes and series, named by their parent's slot and their own identity), and
    how the analysis sorts it."""

    name: str
    path: tuple[str, ...]  # where the rows are in the document
    rows: Callable[[Any], Sequence[Any]]  # from the Frame (or the parent row for a child)
    identity: tuple[str, ...]
    children: tuple[TableSpec, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()  # (column, descending), most significant first


def _section(name: str, field: str) -> Callable[[Frame], Sequence[Any]]:
    def rows(frame: Frame) -> Sequence[Any]:
        section = getattr(frame, name)
        return () if section is None else getattr(section, field)

    return rows


BY_ROUTE = (("requests", True), ("method", False), ("route", False))
# In the order they are written and read: a table's predictions read only the tables before it.
TABLES = (
    TableSpec(
        "processes",
        ("processes",),
        attrgetter("processes"),
        ("pid",),
        sort=(("cpu_percent", True), ("cpu_seconds", True), ("pid", False)),
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
)


def _flat(specs: Sequence[TableSpec]) -> list[TableSpec]:
    out = []
    for spec in specs:
        out.append(spec)
        out.extend(_flat(spec.children))
    return out


ORDER = [spec.name for spec in _flat(TABLES)]  # parents before their children


def sort_slots(
    slots: Any,
    sort: Sequence[Sequence[Any]],
    values: Any,
    parents: Sequence[int],
    parent_order: Sequence[int],
) -> list[int]:
    """Slots in their table's sort (a child's: under its parent, in the parent's order), the
    same list for the encoder's check and the decoder's rebuild: from the slots in ascending
    order, stable sorts from the least significant columns, each run of columns sorted the
    same way at once (itemgetter keys: no Python call per row)."""
    where = {slot: k for k, slot in enumerate(parent_order)}
    records = [(*values[slot], where[parents[slot]] if where else 0, slot) for slot in sorted(slots)]
    runs: list[tuple[list[int], bool]] = []
    for i, descending in sort:
        if runs and runs[-1][1] == descending:
            runs[-1][0].append(i)
        else:
            runs.append(([i], bool(descending)))
    for columns, descending in reversed(runs):
        records.sort(key=itemgetter(*columns), reverse=descending)
    if where:
        records.sort(key=itemgetter(-2))
    return [record[-1] for record in records]


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


def _change_v1(prev: Any, new: Any) -> Any:
    """A cell: 0 (the same), an integer difference (integers; floats in millionths when that
    is exact), {"d": differences} (a list of integers of the same length), or [new]."""
    kind = type(new)
    if kind is type(prev):
        if kind is int:
            return new - prev
        if kind is float:
            try:
                a, b = round(prev * SCALE), round(new * SCALE)
            except (OverflowError, ValueError):  # inf, nan
                return [new]
            return b - a if a / SCALE == prev and b / SCALE == new else [new]
        if new == prev:
            return 0
        if kind is list and len(new) == len(prev) and set(map(type, new)) == {int} == set(map(type, prev)):
            return {"d": list(map(sub, new, prev))}
    return [new]


def _change(prev: Any, new: Any) -> Any:
    """/2's cells: /1's, and counts by key with the same keys (status classes) as
    {"m": differences}."""
    cell = _change_v1(prev, new)
    if (
        type(cell) is list
        and type(new) is dict
        and type(prev) is dict
        and list(new) == list(prev)
        and set(map(type, new.values())) == {int} == set(map(type, prev.values()))
    ):
        return {"m": list(map(sub, new.values(), prev.values()))}
    return cell


def _changes(change: Callable[[Any, Any], Any], prevs: list, news: list) -> list:
    """change(prev, new) for each pair; when every value is a float, an int, a list of ints
    or (/2) counts by key (most columns), without a call a cell."""
    kinds = set(map(type, prevs))
    if len(kinds) == 1 and kinds == set(map(type, news)):
        if int in kinds:
            return list(map(sub, news, prevs))
        if float in kinds:
            scale = repeat(SCALE)
            try:
                a = list(map(round, map(mul, prevs, scale)))
                b = list(map(round, map(mul, news, scale)))
            except (OverflowError, ValueError):  # inf, nan: cell by cell
                pass
            else:
                if list(map(truediv, a, scale)) == prevs and list(map(truediv, b, scale)) == news:
                    return list(map(sub, b, a))
        # two lists (or mappings) that differ with the same length (keys) are not empty
        elif list in kinds and _int_items(prevs) and _int_items(news):
            return [
                0 if new == prev else {"d": list(map(sub, new, prev))} if len(new) == len(prev) else [new]
                for prev, new in zip(prevs, news)
            ]
        elif (
            dict in kinds
            and change is _change
            and _int_items(list(map(dict.values, prevs)))
            and _int_items(list(map(dict.values, news)))
        ):
            return [
                0
                if new == prev
                else {"m": list(map(sub, new.values(), prev.values()))}
                if list(new) == list(prev)
                else [new]
                for prev, new in zip(prevs, news)
            ]
    return list(map(change, prevs, news))


def _cells_text(cells: list) -> str:
    """A column's cells of one frame as JSON, without the brackets. Most columns are whole
    numbers (most of them 0): written as JSON writes them, without its encoder's set-up."""
    if set(map(type, cells)) == {int}:
        return ",".join(map(str, cells))
    return _dumps(cells)[1:-1]


def _int_items(collections: list) -> bool:
    """Whether every item of every collection is an int (not a bool)."""
    return set(map(type, chain.from_iterable(collections))) <= {int}


def _changed(prev: Any, cell: Any) -> Any:
    """The reverse of _change."""
    kind = type(cell)
    if kind is list:
        return cell[0]
    if kind is dict:
        if "m" in cell:
            return dict(zip(prev, map(add, prev.values(), cell["m"])))
        return [a + d for a, d in zip(prev, cell["d"])]
    if not cell:
        return prev
    if type(prev) is float:
        return (round(prev * SCALE) + cell) / SCALE
    return prev + cell


def _changed_all(prevs: list, cells: list) -> list:
    """_changed for each pair of cells that are not 0; when every cell is a whole number and
    every value before a float (or every one an int), at once."""
    if set(map(type, cells)) == {int}:
        kinds = set(map(type, prevs))
        if kinds == {float}:
            scale = repeat(SCALE)
            return list(map(truediv, map(add, map(round, map(mul, prevs, scale)), cells), scale))
        if kinds == {int}:
            return list(map(add, prevs, cells))
    return list(map(_changed, prevs, cells))


def _moved(now: list, before: list) -> float:
    """A column's change summed over the rows that changed (a new row's from 0); 0 when a
    cell is not a number (its predictions then miss, and cost bytes only)."""
    try:
        return sum(cell - (0 if was is NEW else was) for cell, was in zip(now, before))
    except TypeError:
        return 0.0


def _round6(value: Any) -> Any:
    return round(value, 6)


def _same(value: Any) -> Any:
    return value


def _pairs(pairs: Any) -> dict:
    return {k: plain(v) for k, v in pairs}


def _converter(name: str, hint: Any) -> Callable[[Any], Any]:
    """A column's value as the snapshot document holds it (what snapshot.plain does, chosen
    once from the field's type rather than for each value)."""
    if name in MAPPING_FIELDS:
        return _pairs
    if hint is float:
        return _round6  # an int stays an int, as plain leaves it
    if hint in (int, str, bool):
        return _same
    if hint == tuple[int, ...]:
        return list
    return plain


def _bulk(convert: Callable[[Any], Any]) -> Callable[[Any], list]:
    """A converter over many values at once."""
    if convert is _same:
        return list
    if convert is _round6:
        return lambda values: list(map(round, values, repeat(6)))
    return lambda values: list(map(convert, values))


def _guesses(predictor: Predictor, now: Cols, before: Cols, around: Around, count: int) -> list:
    """The predictor's value for each of the `count` rows (None for a row with nothing to
    predict from), floats as snapshot.plain holds them."""
    try:
        values = predictor(now, before, around)
    except PREDICTION_ERRORS:  # row by row: only the rows that raise have no prediction
        values = []
        for k in range(count):
            try:
                values += predictor(
                    {name: [c[k]] for name, c in now.items()},
                    {name: [c[k]] for name, c in before.items()},
                    around,
                )
            except PREDICTION_ERRORS:
                values.append(None)
    return [round(v, 6) if type(v) is float else v for v in values]


def _columns(cols: list[str], rows: list[list] | list[tuple]) -> Cols:
    """Rows (lists of values in `cols` order) as columns."""
    return dict(zip(cols, map(list, zip(*rows)))) if rows else {name: [] for name in cols}


class _Table:
    """A table's state at one frame (each slot's values, the rows' order), kept alike by the
    encoder and the decoder."""

    name: str
    cols: list[str]
    parent_slots: list[int]
    values: Any  # slot -> its values, as the document holds them
    order: list[int] | None
    predicted: list[tuple[int, Predictor]]
    moved_col: int | None
    change: Callable[[Any, Any], Any]  # the encoder's: a cell from its value before and now

    def _predicted(
        self, cols: list[str], names: Sequence[str], codec_name: str
    ) -> list[tuple[int, Predictor]]:
        known = dict(PREDICTED[codec_name].get(self.name, ()))
        return [(cols.index(name), known[name]) for name in names if name in cols and name in known]

    def _moved_col(self, codec_name: str) -> int | None:
        name = MOVED[codec_name].get(self.name)
        return self.cols.index(name) if name in self.cols else None

    def _moved_now(self, now: Cols, before: Cols, around: Around) -> None:
        if self.moved_col is not None:
            name = self.cols[self.moved_col]
            around.moved = _moved(now[name], before[name])

    def _encode_predicted(self, nows: list[list], befores: list, columns: list, around: Around) -> None:
        """The predicted cells of the rows that changed (befores: NEW in every cell of a new row),
        against their prediction."""
        cols, change = self.cols, self.change
        now, before = _columns(cols, nows), _columns(cols, befores)
        self._moved_now(now, before, around)
        for i, predictor in self.predicted:
            guesses = _guesses(predictor, now, before, around, len(nows))
            columns[i] = [
                0 if type(a) is type(g) and a == g else change(g, a) for g, a in zip(guesses, now[cols[i]])
            ]

    def _decode_predicted(self, nows: list[list], befores: list, cells: list[list], around: Around) -> None:
        """The predicted cells of the rows that changed (cells: by column), into their rows,
        a column at a time in the order they were predicted (a prediction may read a cell
        predicted before it)."""
        cols = self.cols
        now, before = _columns(cols, nows), _columns(cols, befores)
        self._moved_now(now, before, around)
        for i, predictor in self.predicted:
            got = now[cols[i]] = list(
                map(_changed, _guesses(predictor, now, before, around, len(nows)), cells[i])
            )
            for row, value in zip(nows, got):
                row[i] = value


class _TableEncoder(_Table):
    def __init__(self, spec: TableSpec, row_type: type, of: str, frames: int, codec_name: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.of = of  # the parent table's name, "" for a table of the frame
        child_fields = {c.path[0] for c in spec.children}
        self.fields = [f.name for f in dataclasses.fields(row_type)]
        self.cols = [name for name in self.fields if name not in child_fields]
        self.row = attrgetter(*self.cols)
        self.ident = attrgetter(*spec.identity)
        hints = typing.get_type_hints(row_type)
        # how a column's values are held in the document, many values at once
        self.bulk_plain = [_bulk(_converter(name, hints.get(name))) for name in self.cols]
        self.sort = [(self.cols.index(name), descending) for name, descending in spec.sort]
        names = [name for name, _ in PREDICTED[codec_name].get(self.name, ())]
        self.predicted = self._predicted(self.cols, names, codec_name)
        self.moved_col = self._moved_col(codec_name)
        self.change = _change_v1 if codec_name == V1 else _change
        self.guessed = {i for i, _ in self.predicted}
        self.slots: dict[Any, int] = {}
        self.parent_slots = []
        self.raw: list[tuple | None] = []
        self.values = []
        self.order = []
        self.present: set[int] = set()
        self._fixes: list[int] | None = None  # the last order written was the slots
        # a table of the frame's sort keys (_key_columns) of its present rows, sorted, and each
        # slot's key: kept from frame to frame while every key keeps to its column's kind
        self._ranked: list[tuple] | None = None
        self._key_of: dict[int, tuple] = {}
        self._numeric: list[bool] = []  # per sort column: numbers (else strings, ascending)
        # per frame: how many rows changed, their slots, their cells per column, the order;
        # a table that appears after the chunk's first frame was empty before
        self.counts: list[int] = [0] * frames
        self.changed_slots: list[str] = []
        self.cells: list[list[str]] = [[] for _ in self.cols]
        self.orders: list[str] = ["[]"] * frames

    def _slots(self, keys: list[Any], parents: Sequence[int] | None) -> list[int]:
        """The slot of each row, new slots for new names; a name twice in one frame: the later
        row gets a slot of its own."""
        slots = self.slots
        found = list(map(slots.get, keys))
        if None not in found and len(set(found)) == len(found):
            return found  # type: ignore[return-value]
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
                    self.parent_slots.append(parents[at])
            order.append(slot)
        return order

    def add(
        self, rows: Sequence[Any], parents: Sequence[int] | None, parent_order: Sequence[int], around: Around
    ) -> list[int]:
        """One frame's rows (of every parent, in order, for a child table); their slots."""
        keys: list[Any] = list(map(self.ident, rows))
        if parents is not None:
            keys = list(zip(parents, keys))
        raws = list(map(self.row, rows))
        order = self._slots(keys, parents)
        raw_of, values = self.raw, self.values
        befores = list(map(raw_of.__getitem__, order))
        changed = sorted(compress(zip(order, raws, befores), map(ne, befores, raws)))
        k = len(changed)
        columns: list[list[Any]] = [[0] * k for _ in self.cols]
        slots, now_raws, was_raws = map(list, zip(*changed)) if changed else ([], [], [])
        for slot, raw in zip(slots, now_raws):
            raw_of[slot] = raw
        prevs: list[list | None] = (
            [None if was is None else values[slot].copy() for slot, was in zip(slots, was_raws)]
            if self.predicted
            else []
        )
        if None in was_raws:  # new rows (a chunk's first frame: all): every cell a literal
            fresh = list(compress(range(k), map(is_, was_raws, repeat(None))))
            literals = [bulk(c) for bulk, c in zip(self.bulk_plain, zip(*map(now_raws.__getitem__, fresh)))]
            for j, now in zip(fresh, zip(*literals)):
                values[slots[j]] = list(now)
            for i, new_values in enumerate(literals):
                if len(fresh) == k:
                    columns[i] = [[v] for v in new_values]
                else:
                    column = columns[i]
                    for j, v in zip(fresh, new_values):
                        column[j] = [v]
        old = list(compress(range(k), map(is_not, was_raws, repeat(None))))  # by place in `changed`
        if old:  # column by column, only the cells that changed, each column's at once
            old_slots = list(map(slots.__getitem__, old))
            olds = zip(*map(was_raws.__getitem__, old))
            news = zip(*map(now_raws.__getitem__, old))
            for i, (was, now_col) in enumerate(zip(olds, news)):
                flags = list(map(ne, was, now_col))
                if True not in flags:
                    continue
                rows = list(map(values.__getitem__, compress(old_slots, flags)))
                now_values = self.bulk_plain[i](compress(now_col, flags))
                if i not in self.guessed:  # else against its prediction, below
                    cells = _changes(self.change, list(map(itemgetter(i), rows)), now_values)
                    if len(cells) == k:  # every row changed here
                        columns[i] = cells
                    else:
                        column = columns[i]
                        for j, cell in zip(compress(old, flags), cells):
                            column[j] = cell
                for row, v in zip(rows, now_values):
                    row[i] = v
        if self.predicted:
            nows = list(map(values.__getitem__, slots))
            new = [NEW] * len(self.cols)
            self._encode_predicted(nows, [new if prev is None else prev for prev in prevs], columns, around)
        changed_slots = slots
        slots = list(map(sub, slots, [0, *slots]))  # ascending: the gaps are small numbers
        self.counts.append(len(slots))
        if slots:
            self.changed_slots.append(",".join(map(str, slots)))
            for pieces, column in zip(self.cells, columns):
                pieces.append(_cells_text(column))
        self.orders.append(self._order(order, parent_order, changed_slots))
        return order

    def _key_columns(self, order: list[int], parent_order: Sequence[int]) -> list[list] | None:
        """The rows' sort keys by column (a descending column negated, a child's parent's
        place first), None when they are not all numbers (or, sorted ascending, strings)."""
        rows = list(map(self.values.__getitem__, order))
        keys = []
        for i, descending in self.sort:
            key = list(map(itemgetter(i), rows))
            kinds = set(map(type, key))
            if not (kinds <= _NUMBERS or (kinds == {str} and not descending)) or any(map(ne, key, key)):
                return None  # None, NaN, a descending string, a list...: sort_slots says
            keys.append(list(map(neg, key)) if descending else key)
        if self.of:
            where = {slot: k for k, slot in enumerate(parent_order)}
            if where:
                keys.insert(0, list(map(where.get, map(self.parent_slots.__getitem__, order))))
        return None if None in (keys[0] if keys else ()) else keys

    def _sorted(self, order: list[int], parent_order: Sequence[int]) -> list[int]:
        """sort_slots' order of the rows (of their stored values), [] when they do not sort.
        When every sort column holds numbers (or, sorted ascending, strings), by one sort of
        key tuples (_key_columns, the slot last: a total order, so the same list as
        sort_slots' stable sorts), started from the frame's own order, which is nearly
        sorted: a few comparisons a row."""
        keys = self._key_columns(order, parent_order)
        if keys is not None:
            return list(map(itemgetter(-1), sorted(zip(*keys, order))))
        try:
            return sort_slots(order, self.sort, self.values, self.parent_slots, parent_order)
        except (TypeError, KeyError):  # a None among the sorted columns
            return []

    def _sorted_since(self, order: list[int], was: set[int], changed: list[int]) -> list[int]:
        """_sorted's order of a table of the frame (not a child: its key has its parents'
        places, which move), from the one before: the keys of the rows that changed, came or
        went taken out of the sorted keys and put back in (the order of key tuples is total,
        so it is the same list), while few did and every key keeps to its column's kind;
        else by _sorted's one sort, which starts the sorted keys again."""
        ranked, key_of = self._ranked, self._key_of
        now = self.present
        came, gone = now - was, was - now
        if ranked is not None and 8 * (len(changed) + len(came) + len(gone)) <= len(order):
            moved = came.union(changed)
            new = self._keys_of(sorted(moved))
            if new is not None and self._take_out(gone.union(moved & was)):
                for key in new:
                    insort(ranked, key)
                    key_of[key[-1]] = key
                return list(map(itemgetter(-1), ranked))
        self._ranked = None
        keys = self._key_columns(order, ())
        if keys is None:
            return self._sorted(order, ())
        self._ranked = ranked = sorted(zip(*keys, order))
        self._key_of = {key[-1]: key for key in ranked}
        self._numeric = [type(column[0]) is not str if column else True for column in keys]
        return list(map(itemgetter(-1), ranked))

    def _take_out(self, slots: set[int]) -> bool:
        """These rows' keys out of the sorted keys; False (nothing is left as it was) when
        one is not where it should be."""
        ranked, key_of = self._ranked, self._key_of
        assert ranked is not None
        for slot in slots:
            old = key_of.pop(slot, None)
            at = bisect_left(ranked, old) if old is not None else len(ranked)
            if at == len(ranked) or ranked[at] is not old:
                return False
            del ranked[at]
        return True

    def _keys_of(self, slots: list[int]) -> list[tuple] | None:
        """The sort keys of these rows as _key_columns makes them, None when one is not of
        its column's kind as the sorted keys hold it (or is NaN)."""
        values, numeric = self.values, self._numeric
        keys = []
        for slot in slots:
            row, key = values[slot], []
            for (i, descending), number in zip(self.sort, numeric):
                value = row[i]
                if (type(value) in _NUMBERS if number else type(value) is str) and value == value:
                    key.append(-value if descending else value)
                else:
                    return None
            keys.append((*key, slot))
        return keys

    def _order(self, order: list[int], parent_order: Sequence[int], changed: list[int]) -> str:
        """The frame's order of rows. For a table the analysis sorts by its own columns: the
        rows come ("a") and gone ("g") and the places ("x": place, offset) where the order
        differs from that sort of the stored values (rounded to six decimals, they can tie
        where the measured values did not), "null" when none came or went and the places are
        those of the frame before. A reader rebuilds the order only for the frame it shows.
        Otherwise, the slots ("null": as before)."""
        before, self.order = self.order, order
        now, was = set(order), self.present
        self.present = now
        if self.sort:
            guess = self._sorted(order, parent_order) if self.of else self._sorted_since(order, was, changed)
            if len(guess) == len(order):
                fixes: list[int] = []
                if guess != order:
                    place = dict(zip(guess, range(len(guess))))
                    for i in compress(range(len(order)), map(ne, order, guess)):
                        fixes += (i, place[order[i]] - i)
                if len(fixes) < len(order):
                    same = now == was and fixes == self._fixes
                    self._fixes = fixes
                    if same:
                        return "null"
                    entry = {"a": sorted(now - was), "g": sorted(was - now), "x": fixes}
                    return _dumps(entry)
        explicit_before = self._fixes is None
        self._fixes = None
        if order == before and explicit_before:
            return "null"
        return _dumps(order)

    def text(self) -> str:
        head = {
            "path": list(self.spec.path),
            "fields": self.fields,
            "cols": self.cols,
            "of": self.of,
            "parents": self.parent_slots,
            "n": self.counts,
            "sort": self.sort,
            "predicted": [self.cols[i] for i, _ in self.predicted],
        }
        return (
            _dumps(head)[:-1]
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
    (the open chunk is written every few seconds) and again later; `final=True` once the
    chunk is complete, to compress it harder. `codec_name`: the codec to write (the previous
    one only for bench/history.py's comparison on the same frames)."""

    def __init__(self, codec_name: str = CODEC) -> None:
        if codec_name not in CODECS:
            raise ValueError(f"unknown codec {codec_name!r}")
        self.codec = codec_name
        self.times: list[float] = []
        self._derived: list[int] = []  # per frame: 1 when its carbon rows are not stored
        self._durations: list[float] = []
        self._ticks: list[float] = []
        self._rest: list[str] = []
        self._last_rest: dict | None = None
        self._tables: dict[str, _TableEncoder] = {}

    def __len__(self) -> int:
        return len(self.times)

    def _add_rows(
        self, spec: TableSpec, rows: Sequence[Any], parents: Sequence[int] | None, of: str, around: Around
    ) -> None:
        table = self._tables.get(spec.name)
        if table is None:
            if not rows:
                return
            table = self._tables[spec.name] = _TableEncoder(
                spec, type(rows[0]), of, len(self.times), self.codec
            )
        parent_order = (self._tables[of].order or ()) if of else ()
        order = table.add(rows, parents, parent_order, around)
        for child in spec.children:
            child_rows: list[Any] = []
            child_parents: list[int] = []
            for slot, row in zip(order, rows):
                got = child.rows(row)
                child_rows.extend(got)
                child_parents.extend([slot] * len(got))
            self._add_rows(child, child_rows, child_parents, spec.name, around)

    def add(self, frame: Frame) -> None:
        n = len(self.times)
        rest = frame_to_json(_strip(frame))
        around = Around(rest, frame.duration_s, self._tables)
        derived = self.codec != V1 and carbon_derivable(frame)
        self._derived.append(int(derived))
        for spec in TABLES:
            if not (derived and spec.name == "carbon"):
                self._add_rows(spec, spec.rows(frame), None, "", around)
        for table in self._tables.values():
            if len(table.counts) == n:  # no rows this frame (its section or parent is gone)
                table.add((), [] if table.of else None, (), around)
        part = {"k": rest} if self._last_rest is None else codec.diff(self._last_rest, rest)
        self._rest.append(_dumps(part))
        self._last_rest = rest
        self.times.append(frame.taken_at)
        self._durations.append(round(frame.duration_s, 3))
        self._ticks.append(frame.duration_s)

    def encode(self, final: bool = False) -> bytes:
        tables = [self._tables[name] for name in ORDER if name in self._tables]
        head: dict[str, Any] = {"t": self.times, "d": self._durations, "dt": self._ticks}
        if self.codec != V1:
            head["cd"] = self._derived
        text = (
            _dumps(head)[:-1]
            + ',"r":['
            + ",".join(self._rest)
            + '],"tables":{'
            + ",".join(f'"{table.name}":{table.text()}' for table in tables)
            + "}}"
        )
        level = LEVEL if final else FLUSH_LEVEL
        return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(text.encode())


class _TableDecoder(_Table):
    def __init__(self, name: str, body: dict, frames: int, codec_name: str) -> None:
        self.name = name
        self.path: list[str] = body["path"]
        self.fields: list[str] = body["fields"]
        self.cols = body["cols"]
        self.of: str = body["of"]
        self.parent_slots = body["parents"]
        self.counts: list[int] = body["n"]
        self.slots: list[int] = body["s"]
        self.orders: list[list[int] | dict | None] = body["o"]
        self.sort: list[list[Any]] = body["sort"]
        self.predicted = self._predicted(self.cols, body["predicted"], codec_name)
        self.moved_col = self._moved_col(codec_name)
        self.guessed = {i for i, _ in self.predicted}
        if len(self.predicted) != len(body["predicted"]):
            raise codec.CorruptChunk(f"table {name}: predicted by formulas this obs-tui has not")
        columns: list[list[Any]] = body["c"]
        if len(self.counts) != frames or len(self.orders) != frames or sum(self.counts) != len(self.slots):
            raise codec.CorruptChunk(f"table {name}: its frames and rows disagree")
        if len(columns) != len(self.cols) or any(len(c) != len(self.slots) for c in columns):
            raise codec.CorruptChunk(f"table {name}: its columns and rows disagree")
        # cut into rows frame by frame as they are stepped over, not all at once: a seek
        # reads half a chunk on average, and the rows made are not kept
        self.columns = columns
        self.reset()

    def reset(self) -> None:
        self.values: dict[int, list] = {}
        self.order = []
        self.present: set[int] = set()
        self.fixes: list[int] | None = None  # the order is the sort with these fixes, else `order`
        self.at = 0  # the next changed row to apply

    def step(self, frame: int, around: Around) -> None:
        """The frame's changed rows into the table's state, a column at a time (as the
        encoder wrote them)."""
        values, guessed = self.values, self.guessed
        start = self.at
        end = start + self.counts[frame]
        if end > start:
            cells = [column[start:end] for column in self.columns]
            slots = list(accumulate(self.slots[start:end]))  # gaps from 0
            prevs = list(map(values.get, slots))
            nows: list[list] = [[] if prev is None else prev.copy() for prev in prevs]
            old = list(compress(range(len(slots)), nows))
            if len(old) < len(slots):  # new rows: literals
                for j in compress(range(len(slots)), map(is_, prevs, repeat(None))):
                    nows[j] = [None if i in guessed else column[j][0] for i, column in enumerate(cells)]
            for i, column in enumerate(cells):  # most cells are 0 (the same): only the others
                if i in guessed:  # against their prediction, not the row before: below
                    continue
                changed = list(compress(old, map(column.__getitem__, old)))
                if changed:
                    rows = list(map(nows.__getitem__, changed))
                    got = _changed_all(list(map(itemgetter(i), rows)), list(map(column.__getitem__, changed)))
                    for row, value in zip(rows, got):
                        row[i] = value
            if guessed:  # once every changed row has its other cells, as the encoder predicted them
                for row in nows:
                    for i in guessed:
                        row[i] = None
                new = [NEW] * len(self.cols)
                self._decode_predicted(nows, [new if prev is None else prev for prev in prevs], cells, around)
            values.update(zip(slots, nows))
        self.at = end
        entry = self.orders[frame]
        if isinstance(entry, dict):
            self.present = (self.present - set(entry["g"])) | set(entry["a"])
            self.fixes = entry["x"]
        elif entry is not None:
            self.present, self.fixes, self.order = set(entry), None, entry

    def state(self) -> tuple:
        """What step and order_now change (the rows' lists are replaced, never changed in
        place, so the dict of them is copied, not the lists)."""
        return dict(self.values), self.order, self.present, self.fixes, self.at

    def restore(self, state: tuple) -> None:
        values, self.order, self.present, self.fixes, self.at = state
        self.values = dict(values)

    def order_now(self, parent_order: Sequence[int]) -> list[int]:
        """The rows' order at the frame reached (built here, not at every frame stepped over)."""
        if self.fixes is not None:
            guess = sort_slots(self.present, self.sort, self.values, self.parent_slots, parent_order)
            fixes, self.order = self.fixes, list(guess)
            for i in range(0, len(fixes), 2):
                self.order[fixes[i]] = guess[fixes[i] + fixes[i + 1]]
        return self.order or []

    def rows(self) -> list[dict]:
        cols, values = self.cols, self.values
        return [dict(zip(cols, values[slot])) for slot in self.order or ()]


class ColumnChunk:
    """A decompressed chunk whose frames are rebuilt when asked for (`doc(i)`), from its start;
    the state of the last one asked for is kept, so reading forward applies one frame's changes."""

    def __init__(self, body: dict, codec_name: str = CODEC) -> None:
        self.times: list[float] = body["t"]
        self.durations: list[float] = body["d"]
        self._ticks: list[float] = body["dt"]
        self._rest: list[dict] = body["r"]
        frames = len(self.times)
        self._derived: list[int] = body.get("cd") or [0] * frames
        if not frames or not len(self.durations) == len(self._ticks) == len(self._rest) == frames:
            raise codec.CorruptChunk("frame count and times disagree")
        if len(self._derived) != frames:
            raise codec.CorruptChunk("frame count and carbon rows disagree")
        self._tables = [_TableDecoder(name, t, frames, codec_name) for name, t in body["tables"].items()]
        self._by_name = {t.name: t for t in self._tables}
        self._lock = threading.Lock()
        # frame -> the state there, kept every CHECKPOINT_EVERY frames as they are first
        # stepped over: a step back (`[`) goes on from the one before it, not from the start
        self._checkpoints: dict[int, tuple[dict, list[tuple]]] = {}
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
        around = Around(self._doc, self._ticks[self._at], self._by_name)
        for table in self._tables:
            table.step(self._at, around)
        if self._at % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 and self._at not in self._checkpoints:
            self._checkpoints[self._at] = (self._doc, [table.state() for table in self._tables])

    def _rewind(self, i: int) -> None:
        """To the latest state kept at or before frame i, when that is nearer than where the
        chunk is (after i: the start, if none is kept)."""
        kept = max((k for k in self._checkpoints if k <= i), default=-1)
        if kept <= self._at <= i:
            return
        if kept < 0:
            self._reset()
            return
        self._doc, states = self._checkpoints[kept]
        self._at = kept
        for table, state in zip(self._tables, states):
            table.restore(state)

    def doc(self, i: int) -> dict:
        if not 0 <= i < len(self.times):
            raise IndexError(i)
        with self._lock:  # the state moves: one reader at a time (replay reads in threads)
            try:
                self._rewind(i)
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
        for table in self._tables:  # parents before their children
            table.order_now(self._by_name[table.of].order or () if table.of else ())
        rows = {t.name: t.rows() for t in self._tables}
        for table in self._tables:
            if table.of:
                continue
            mine = rows[table.name]
            children = [t for t in self._tables if t.of == table.name]
            # a child table with no rows in the whole chunk is not in it: its field is []
            child_fields = [f for f in table.fields if f not in table.cols]
            if child_fields:
                by_slot = dict(zip(table.order or (), mine))
                for row in mine:
                    for field in child_fields:
                        row[field] = []
                for child in children:
                    field = child.path[0]
                    for slot, row in zip(child.order or (), rows[child.name]):
                        by_slot[child.parent_slots[slot]][field].append(row)
                fields = table.fields
                mine = [{k: row[k] for k in fields if k in row} for row in mine]
            _put(doc, table.path, mine)
        if self._derived[self._at] and isinstance(doc.get("carbon"), dict):
            _put(doc, ["carbon", "processes"], carbon_rows(doc))
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
    if name not in CODECS:
        return codec.open_chunk(data, name)
    try:
        return ColumnChunk(json.loads(zstandard.ZstdDecompressor().decompress(data)), name)
    except codec.CorruptChunk:
        raise
    except codec.ERRORS as exc:
        raise codec.CorruptChunk(f"{type(exc).__name__}: {exc}") from None


def encode_chunk(frames: Sequence[Frame]) -> bytes:
    encoder = ChunkEncoder()
    for frame in frames:
        encoder.add(frame)
    return encoder.encode(final=True)


def decode_chunk(data: bytes, name: str = CODEC) -> list[tuple[float, dict]]:
    """(taken_at, document) for every frame of the chunk; CorruptChunk when it cannot."""
    return open_chunk(data, name).frames()
