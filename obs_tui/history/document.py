"""A `snapshot --json` document back into a Frame, for replay.

The reverse of snapshot.frame_to_json, written against the model's own field types so it
follows the model as it grows: a field the document lacks (history written before the field
existed) takes its default, or the empty value of its type; a field the model no longer has
(history written by a later obs-tui) is ignored. Schema 1 only grows, so both directions
keep old history readable.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from functools import cache
from typing import Any

from obs_tui.model import Capability, Frame, SourceStatus
from obs_tui.snapshot import MAPPING_FIELDS

_EMPTY = {int: 0, float: 0.0, str: "", bool: False}


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _empty(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return ()
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp):
        return None
    return _EMPTY.get(tp)


def _value(tp: Any, raw: Any, mapping: bool = False) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if raw is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(inner[0], raw, mapping)
    if origin is tuple:
        args = typing.get_args(tp)
        if mapping and isinstance(raw, dict):  # held as ((key, value), ...) in the model
            pair = typing.get_args(args[0])
            return tuple((str(k), _value(pair[1], v)) for k, v in raw.items())
        if not isinstance(raw, list):
            return ()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], item) for item in raw)
        return tuple(_value(a, item) for a, item in zip(args, raw))
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, raw) if isinstance(raw, dict) else None
    if tp is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if tp is int and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return int(raw)
    if tp in _EMPTY and not isinstance(raw, tp):
        return _EMPTY[tp]
    return raw


def _dataclass(cls: type, raw: dict) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in raw:
            kwargs[f.name] = _value(hints[f.name], raw[f.name], f.name in MAPPING_FIELDS)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = _empty(hints[f.name])
    return cls(**kwargs)


def frame_from_json(doc: dict, taken_at: float | None = None) -> Frame:
    """The Frame a document describes. `taken_at`: the exact time (the document's own is to
    the second)."""
    hints = _hints(Frame)
    if taken_at is None:
        taken_at = datetime.fromisoformat(doc["taken_at"]).timestamp()
    caps = tuple(sorted((name, Capability(bool(c.get("ok")), str(c.get("reason", ""))))
                        for name, c in (doc.get("capabilities") or {}).items()))
    sources = tuple(SourceStatus(name, str(s.get("mode", "off")), str(s.get("reason", "")),
                                 bool(s.get("stale", False)), bool(s.get("join", False)))
                    for name, s in (doc.get("sources") or {}).items())
    return Frame(
        host=str(doc.get("host", "")), taken_at=float(taken_at),
        duration_s=float(doc.get("duration_s") or 0.0), uptime_s=float(doc.get("uptime_s") or 0.0),
        interval_s=float(doc.get("interval_s") or 1.0), capabilities=caps, sources=sources,
        processes=_value(hints["processes"], doc.get("processes") or []),
        red=_value(hints["red"], doc.get("red")), power=_value(hints["power"], doc.get("power")),
        carbon=_value(hints["carbon"], doc.get("carbon")), slo=_value(hints["slo"], doc.get("slo") or []),
        instance=str(doc.get("instance", "")),
        instances=tuple(str(i) for i in doc.get("instances") or ()),
        schema=int(doc.get("schema", 1)))
