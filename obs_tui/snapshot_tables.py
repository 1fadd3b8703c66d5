"""`snapshot --csv TABLE`: one table of the snapshot document as CSV rows.

The rows are the document's own (frame_to_json), so CSV and JSON never disagree; the columns
are the row type's scalar fields in the model's order (a field added to the model appears as a
column), after `taken_at` and `host` so streamed frames can be told apart. Lists are joined
with spaces (a service's ports); burn rates become one column per window.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import types
import typing
from typing import Any

from obs_tui.model import ProcessPower, ServiceStats, SloStatus
from obs_tui.raw import WINDOWS

SCALARS = (int, float, str, bool)


def _rows_processes(doc: dict) -> list[dict]:
    return list((doc.get("power") or {}).get("processes") or [])


def _rows_services(doc: dict) -> list[dict]:
    return list((doc.get("red") or {}).get("services") or [])


def _rows_slo(doc: dict) -> list[dict]:
    rows = []
    for slo in doc.get("slo") or []:
        burns = slo.get("burn_rates") or {}
        rows.append({**slo, **{f"burn_rate_{w}": burns.get(w) for w in WINDOWS}})
    return rows


# table -> (row type, rows of a document, extra columns after the type's own)
TABLES = {
    "processes": (ProcessPower, _rows_processes, ()),
    "services": (ServiceStats, _rows_services, ()),
    "slo": (SloStatus, _rows_slo, tuple(f"burn_rate_{w}" for w in WINDOWS)),
}


def _is_scalar(hint: Any) -> bool:
    if hint in SCALARS:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return all(a in SCALARS or a is type(None) for a in typing.get_args(hint))
    # a tuple of numbers (ports): one cell, space separated
    return (
        typing.get_origin(hint) is tuple
        and typing.get_args(hint)[:1] == (int,)
        and typing.get_args(hint)[1:] in ((), (Ellipsis,))
    )


def columns(table: str) -> list[str]:
    row_type, _, extra = TABLES[table]
    hints = typing.get_type_hints(row_type)
    own = [f.name for f in dataclasses.fields(row_type) if _is_scalar(hints[f.name])]
    return ["taken_at", "host", *own, *extra]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value


class CsvWriter:
    """Writes the header once, then each document's rows, flushing after each document (a
    stream read line by line, like the NDJSON one)."""

    def __init__(self, table: str, out: typing.TextIO) -> None:
        self.table = table
        self.out = out
        self.columns = columns(table)
        self._header_written = False

    def write(self, doc: dict) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not self._header_written:
            writer.writerow(self.columns)
            self._header_written = True
        for row in TABLES[self.table][1](doc):
            full = {"taken_at": doc["taken_at"], "host": doc["host"], **row}
            writer.writerow([_cell(full.get(c)) for c in self.columns])
        self.out.write(buffer.getvalue())
        self.out.flush()
